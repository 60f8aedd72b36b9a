// Pipeline Gantt chart as a self-contained SVG: one row per device, one box per forward (F),
// backward (B) or weight-gradient (W) operation, labelled with its micro-batch.
import { escapeXml, num } from './svg.js';

export interface GanttOp {
  device: number;
  kind: 'F' | 'B' | 'W';
  microBatch: number;
  chunk: number;
  start: number;
  end: number;
}

export interface GanttOptions {
  title?: string;
  /** Width of the drawing area in pixels. */
  width?: number;
  rowHeight?: number;
  /** Axis tick labels; default: seconds with ms/µs prefixes. Pass e.g. `(t) => String(t)` for
   * times in arbitrary units. */
  formatTime?: (t: number) => string;
}

// Forward in blues, backward in greens, weight gradients in orange; chunks/pipes darken the hue.
const palette: Record<'F' | 'B' | 'W', string[]> = {
  F: ['#6baed6', '#3182bd', '#08519c', '#9ecae1'],
  B: ['#74c476', '#31a354', '#006d2c', '#a1d99b'],
  W: ['#fd8d3c', '#e6550d', '#a63603', '#fdae6b'],
};

export function ganttSvg(ops: readonly GanttOp[], opts: GanttOptions = {}): string {
  const devices = ops.reduce((n, o) => Math.max(n, o.device + 1), 0);
  const end = ops.reduce((t, o) => Math.max(t, o.end), 0);
  const start = ops.reduce((t, o) => Math.min(t, o.start), Infinity);
  const width = opts.width ?? 900;
  const rowH = opts.rowHeight ?? 26;
  const left = 70, top = opts.title ? 34 : 10, bottom = 34;
  const height = top + devices * rowH + bottom;
  const span = end - (Number.isFinite(start) ? start : 0) || 1;
  const x = (t: number): number => left + ((t - start) / span) * width;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${height}" viewBox="0 0 ${left + width + 20} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  if (opts.title) out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);
  for (let d = 0; d < devices; d++) {
    const y = top + d * rowH;
    out.push(`<text x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">device ${d}</text>`);
    out.push(`<line x1="${left}" y1="${y + rowH}" x2="${left + width}" y2="${y + rowH}" stroke="#eee"/>`);
  }
  for (const o of ops) {
    const y = top + o.device * rowH + 2;
    const w = Math.max(0.5, x(o.end) - x(o.start));
    const fill = palette[o.kind][o.chunk % 4];
    out.push(`<rect x="${num(x(o.start))}" y="${y}" width="${num(w)}" height="${rowH - 4}" fill="${fill}" stroke="white" stroke-width="0.5"><title>${o.kind}${o.microBatch} chunk ${o.chunk} ${num(o.start)}–${num(o.end)}</title></rect>`);
    if (w > 14) out.push(`<text x="${num(x(o.start) + w / 2)}" y="${y + rowH / 2 + 2}" text-anchor="middle" fill="white">${o.microBatch}</text>`);
  }
  const axisY = top + devices * rowH + 14;
  for (let i = 0; i <= 5; i++) {
    const t = start + (span * i) / 5;
    out.push(`<text x="${num(x(t))}" y="${axisY}" text-anchor="middle" fill="#555">${escapeXml((opts.formatTime ?? formatTime)(t))}</text>`);
  }
  const legendY = axisY + 14;
  const kinds = (['F', 'B', 'W'] as const).filter((k) => ops.some((o) => o.kind === k));
  kinds.forEach((k, i) => {
    const lx = left + i * 130;
    out.push(`<rect x="${lx}" y="${legendY - 9}" width="12" height="10" fill="${palette[k][0]}"/>`);
    out.push(`<text x="${lx + 16}" y="${legendY}">${k === 'F' ? 'forward' : k === 'B' ? (kinds.includes('W') ? 'backward (input grad)' : 'backward') : 'weight grad'}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function formatTime(t: number): string {
  if (t === 0) return '0';
  if (t >= 1) return `${t.toPrecision(3)} s`;
  if (t >= 1e-3) return `${(t * 1e3).toPrecision(3)} ms`;
  return `${(t * 1e6).toPrecision(3)} µs`;
}
