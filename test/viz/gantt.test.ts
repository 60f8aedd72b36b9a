import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulatePipeline } from '../../src/plan/index.js';
import { ganttSvg, htmlReport, stackedBarSvg } from '../../src/viz/index.js';

test('Gantt SVG: one box per operation, one row label per device, legend names the op kinds', () => {
  const r = simulatePipeline({ schedule: 'zb-h1', stages: 4, microBatches: 8, forward: 1, backward: 2 });
  const svg = ganttSvg(r.ops, { title: 'zb-h1 <test>' });
  assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
  const boxes = svg.match(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="[^"]+" stroke="white"/g) ?? [];
  assert.equal(boxes.length, r.ops.length);
  for (let d = 0; d < 4; d++) assert.ok(svg.includes(`>device ${d}<`));
  assert.ok(svg.includes('weight grad') && svg.includes('zb-h1 &lt;test&gt;'));
});

test('boxes are placed in time order: a later op is never drawn left of an earlier one on the same row', () => {
  const r = simulatePipeline({ schedule: '1f1b', stages: 2, microBatches: 2, forward: 1, backward: 2 });
  const svg = ganttSvg(r.ops, { width: 100 });
  const xs = [...svg.matchAll(/<rect x="([^"]+)" y="([^"]+)" width="([^"]+)"[^>]*stroke="white"/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]), w: Number(m[3]) }));
  const total = r.stepTime;
  for (const [i, o] of r.ops.entries()) {
    assert.ok(Math.abs(xs[i]!.x - (70 + (o.start / total) * 100)) < 0.01);
    assert.ok(Math.abs(xs[i]!.w - ((o.end - o.start) / total) * 100) < 0.01);
  }
});

test('HTML report is self-contained and escapes text; bars scale to the limit', () => {
  const bar = stackedBarSvg([{ label: 'weights', value: 10 }, { label: 'activations', value: 30 }], { limit: 80, width: 800 });
  assert.ok(bar.includes('width="100"') && bar.includes('width="300"'));
  const html = htmlReport('a <b> report', [
    { kind: 'heading', text: 'h' }, { kind: 'table', header: ['x', 'y'], rows: [['1', '<2>']] }, { kind: 'svg', svg: bar, caption: 'c' },
    { kind: 'paragraph', text: 'p & q' }, { kind: 'pre', text: 'pre' },
  ]);
  assert.ok(html.includes('<title>a &lt;b&gt; report</title>') && html.includes('<td>&lt;2&gt;</td>') && html.includes('p &amp; q'));
  assert.ok(!/<script|<link|src="http|href="http/.test(html));
});
