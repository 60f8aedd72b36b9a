// A horizontal stacked bar as SVG, used for memory breakdowns (one segment per component).
import { escapeXml, num } from './svg.js';

export interface BarSegment { label: string; value: number }

const colors = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#9d755d'];

/** `limit` draws a vertical line (e.g. device memory). `format` prints values in the legend. */
export function stackedBarSvg(segments: readonly BarSegment[], opts: { limit?: number; limitLabel?: string; format?: (v: number) => string; width?: number } = {}): string {
  const width = opts.width ?? 700, left = 10, barH = 28, top = 10;
  const total = segments.reduce((a, s) => a + s.value, 0);
  const scaleMax = Math.max(total, opts.limit ?? 0) || 1;
  const fmt = opts.format ?? ((v: number) => num(v));
  const x = (v: number): number => left + (v / scaleMax) * width;
  const out: string[] = [];
  const legendRows = Math.ceil(segments.length / 3);
  const height = top + barH + 20 + legendRows * 16 + 6;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width + 2 * left}" height="${height}" font-family="sans-serif" font-size="11">`);
  let at = 0;
  segments.forEach((s, i) => {
    out.push(`<rect x="${num(x(at))}" y="${top}" width="${num(Math.max(0, x(at + s.value) - x(at)))}" height="${barH}" fill="${colors[i % colors.length]}"><title>${escapeXml(s.label)}: ${escapeXml(fmt(s.value))}</title></rect>`);
    at += s.value;
  });
  if (opts.limit !== undefined) {
    out.push(`<line x1="${num(x(opts.limit))}" y1="${top - 4}" x2="${num(x(opts.limit))}" y2="${top + barH + 4}" stroke="black" stroke-dasharray="3,2"/>`);
    out.push(`<text x="${num(Math.min(x(opts.limit), left + width - 60))}" y="${top + barH + 16}" fill="#333">${escapeXml(opts.limitLabel ?? fmt(opts.limit))}</text>`);
  }
  segments.forEach((s, i) => {
    const lx = left + (i % 3) * 230, ly = top + barH + 32 + Math.floor(i / 3) * 16;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${colors[i % colors.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${escapeXml(`${s.label}: ${fmt(s.value)}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
