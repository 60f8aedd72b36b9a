// Activation checkpointing's trade: memory held for backward against step time, for GPTs trained
// eagerly (forward, backward, AdamW) with and without GptConfig.checkpoint, on the wasm backend.
//
//   node --expose-gc --import tsx bench/checkpoint.ts [--quick] [--out=bench/results]
//
// "held after forward" is the bytes of live tensor storages right after the loss is computed, minus
// those before the step, after a full garbage collection (so only what the tape keeps for backward,
// plus the loss, counts; without --expose-gc the number includes garbage and is marked so).
// "tape" is the bytes of the distinct storages reachable from the loss's tape (no GC involved).
// Step time is the median of timed steps after warm-up; the expected cost is about one more forward
// of the blocks, i.e. +25-35% on the step.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src/index.js';
import type { Tensor } from '../src/index.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const quick = args.has('quick');
const outDir = args.get('out') ?? 'bench/results';
const gc = (globalThis as { gc?: () => void }).gc;

interface Case { name: string; vocab: number; ctx: number; d: number; heads: number; layers: number; batch: number }
const cases: Case[] = quick
  ? [{ name: 'tiny', vocab: 65, ctx: 32, d: 32, heads: 2, layers: 2, batch: 4 }]
  : [
    { name: 'char-gpt (issue 6 GPT)', vocab: 65, ctx: 64, d: 128, heads: 4, layers: 2, batch: 16 },
    { name: 'deeper: 8 layers, ctx 128', vocab: 65, ctx: 128, d: 128, heads: 4, layers: 8, batch: 16 },
  ];

function tapeBytes(root: Tensor): number {
  type Node = { inputs: Tensor[]; output: Tensor | undefined };
  const seen = new Set<unknown>();
  const storages = new Map<unknown, number>();
  const stack = [root.gradNode as unknown as Node | undefined];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === undefined || seen.has(node)) continue;
    seen.add(node);
    for (const x of [...node.inputs, ...(node.output ? [node.output] : [])]) {
      storages.set(x.storage, x.storage.size * t.itemsize(x.dtype));
      stack.push(x.gradNode as unknown as Node | undefined);
    }
  }
  return [...storages.values()].reduce((a, b) => a + b, 0);
}

async function settle(): Promise<number> {
  if (gc === undefined) return t.memoryStats().liveBytes;
  gc();
  // FinalizationRegistry callbacks run after the collection, on later turns of the event loop.
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
  return t.memoryStats().liveBytes;
}

async function measure(c: Case, checkpoint: boolean) {
  t.manualSeed(0);
  const model = new t.nn.GPT({ vocabSize: c.vocab, blockSize: c.ctx, embedDim: c.d, numHeads: c.heads, numLayers: c.layers, dropout: 0.1, checkpoint });
  const opt = new t.optim.AdamW(model.parameters(), { lr: 1e-3 });
  const x = t.randint(0, c.vocab, [c.batch, c.ctx]);
  const y = t.randint(0, c.vocab, [c.batch, c.ctx]);
  const lossOf = () => t.crossEntropy(model.call(x).reshape([c.batch * c.ctx, c.vocab]), y.reshape([c.batch * c.ctx]));
  // Each step in a scope: its tensors are disposed when it ends (a synchronous loop gives the
  // FinalizationRegistry no turn to release dropped tensors).
  const step = (): number => t.scope(() => {
    opt.zeroGrad();
    const loss = lossOf();
    loss.backward();
    opt.step();
    return loss.item();
  });
  for (let i = 0; i < 3; i++) step();
  // Memory held for backward: live bytes just after the forward, against just before it.
  opt.zeroGrad();
  const before = await settle();
  const scope = t.memoryScope();
  const loss = lossOf();
  const held = (await settle()) - before;
  const tape = tapeBytes(loss);
  loss.backward();
  opt.step();
  scope[Symbol.dispose]();
  const times: number[] = [];
  for (let i = 0; i < (quick ? 3 : 15); i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { heldAfterForwardMiB: held / 2 ** 20, tapeMiB: tape / 2 ** 20, stepMs: times[times.length >> 1]! };
}

const rows = [];
for (const c of cases) {
  const plain = await measure(c, false);
  const ck = await measure(c, true);
  rows.push({ ...c, plain, checkpoint: ck });
  console.log(`${c.name}: held ${plain.heldAfterForwardMiB.toFixed(2)} → ${ck.heldAfterForwardMiB.toFixed(2)} MiB, tape ${plain.tapeMiB.toFixed(2)} → ${ck.tapeMiB.toFixed(2)} MiB, step ${plain.stepMs.toFixed(1)} → ${ck.stepMs.toFixed(1)} ms`);
}

const result = {
  benchmark: 'activation checkpointing (GptConfig.checkpoint), eager training steps',
  date: new Date().toISOString(),
  backend: t.currentBackendName(),
  gcForced: gc !== undefined,
  command: 'node --expose-gc --import tsx bench/checkpoint.ts',
  rows,
};
const md = [
  `# Activation checkpointing: memory against step time (${t.currentBackendName()} backend)`,
  '',
  `${result.date}; \`${result.command}\`${gc === undefined ? ' (run without --expose-gc: held bytes include garbage)' : ''}. GPT with dropout 0.1, AdamW, batch × context tokens per step.`,
  '',
  '| model | layers | d | ctx | batch | held after forward, plain → checkpointed (MiB) | tape (MiB) | step (ms) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.name} | ${r.layers} | ${r.d} | ${r.ctx} | ${r.batch} | ${r.plain.heldAfterForwardMiB.toFixed(2)} → ${r.checkpoint.heldAfterForwardMiB.toFixed(2)} (${(100 * (1 - r.checkpoint.heldAfterForwardMiB / r.plain.heldAfterForwardMiB)).toFixed(0)}% less) | ${r.plain.tapeMiB.toFixed(2)} → ${r.checkpoint.tapeMiB.toFixed(2)} | ${r.plain.stepMs.toFixed(1)} → ${r.checkpoint.stepMs.toFixed(1)} (${(100 * (r.checkpoint.stepMs / r.plain.stepMs - 1)).toFixed(0)}% more) |`),
  '',
].join('\n');
if (!quick) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'checkpoint.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(outDir, 'checkpoint.md'), md);
}
console.log(md);
