// A self-contained HTML report (inline CSS and SVG, no scripts, no network): sections of text,
// tables and SVG figures.
import { escapeXml } from './svg.js';

export type ReportBlock =
  | { kind: 'heading'; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'table'; header: readonly string[]; rows: readonly (readonly string[])[] }
  | { kind: 'svg'; svg: string; caption?: string }
  | { kind: 'pre'; text: string };

export function htmlReport(title: string, blocks: readonly ReportBlock[]): string {
  const body = blocks.map((b) => {
    switch (b.kind) {
      case 'heading': return `<h2>${escapeXml(b.text)}</h2>`;
      case 'paragraph': return `<p>${escapeXml(b.text)}</p>`;
      case 'pre': return `<pre>${escapeXml(b.text)}</pre>`;
      case 'svg': return `<figure>${b.svg.startsWith('<svg') ? b.svg : ''}${b.caption ? `<figcaption>${escapeXml(b.caption)}</figcaption>` : ''}</figure>`;
      case 'table': return `<table><thead><tr>${b.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${b.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
    }
  }).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:12px}
figure{margin:1em 0}figcaption{font-size:12px;color:#555}
</style></head><body>
<h1>${escapeXml(title)}</h1>
${body}
</body></html>
`;
}
