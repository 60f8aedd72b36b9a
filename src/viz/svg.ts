// Minimal helpers for writing SVG as strings (no DOM needed, so it runs in Node and browsers).

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function num(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}
