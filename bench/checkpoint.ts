// Keeping activations off the backend: memory held for backward against step time, for GPTs
// trained eagerly (forward, backward, AdamW) plainly, with GptConfig.checkpoint (recompute each
// block in backward) and with GptConfig.offload (its saved tensors in host arrays), on wasm.
//
//   node --expose-gc --import tsx bench/checkpoint.ts [--quick] [--out=bench/results]
//
// "held after forward" is the bytes of live tensor storages right after the loss is computed, minus
// those before the step, after a full garbage collection (so only what the tape keeps for backward,
// plus the loss, counts; without --expose-gc the number includes garbage and is marked so).
// "tape" is the bytes of the distinct storages reachable from the loss's tape (no GC involved).
// Step time is the median of timed steps after warm-up. Expected: checkpoint costs about one more
// forward of the blocks (+25-35% on a step whose forward is a third of it); offload two copies of
// each saved tensor (memory-bound, ~+5-15%). "host" is what offload keeps in JS arrays instead.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src/index.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const quick = args.has('quick');
const outDir = args.get('out') ?? 'bench/results';
const gc = (globalThis as { gc?: () => void }).gc;

interface Case { name: string; vocab: number; ctx: number; d: number; heads: number; layers: number; batch: number }
const cases: Case[] = quick
  ? [{ name: 'tiny', vocab: 65, ctx: 32, d: 32, heads: 2, layers: 2, batch: 4 }]
  : [
    { name: 'the bench GPT (issue 6)', vocab: 65, ctx: 64, d: 128, heads: 4, layers: 2, batch: 16 },
    { name: 'deeper: 8 layers, ctx 128', vocab: 65, ctx: 128, d: 128, heads: 4, layers: 8, batch: 16 },
  ];

async function settle(): Promise<number> {
  if (gc === undefined) return t.memoryStats().liveBytes;
  gc();
  // FinalizationRegistry callbacks run after the collection, on later turns of the event loop.
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
  return t.memoryStats().liveBytes;
}

type Mode = 'plain' | 'checkpoint' | 'offload';

async function measure(c: Case, mode: Mode) {
  t.manualSeed(0);
  const model = new t.nn.GPT({ vocabSize: c.vocab, blockSize: c.ctx, embedDim: c.d, numHeads: c.heads, numLayers: c.layers, dropout: 0.1, checkpoint: mode === 'checkpoint', offload: mode === 'offload' });
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
  const hostBefore = t.offloadTotals().hostBytes;
  const loss = lossOf();
  const held = (await settle()) - before;
  const tape = t.savedTensorMemory(loss).bytes;
  const host = t.offloadTotals().hostBytes - hostBefore;
  loss.backward();
  opt.step();
  scope[Symbol.dispose]();
  return { step, memory: { heldAfterForwardMiB: held / 2 ** 20, tapeMiB: tape / 2 ** 20, hostMiB: host / 2 ** 20 } };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const rows = [];
for (const c of cases) {
  const modes = ['plain', 'checkpoint', 'offload'] as const;
  const runs = [];
  for (const mode of modes) runs.push(await measure(c, mode));
  // Steps alternate between the modes, so a machine whose speed drifts slows them alike.
  const times: number[][] = modes.map(() => []);
  for (let i = 0; i < (quick ? 3 : 15); i++) {
    runs.forEach((r, m) => {
      const t0 = performance.now();
      r.step();
      times[m]!.push(performance.now() - t0);
    });
  }
  const [plain, checkpoint, offload] = runs.map((r, m) => ({ ...r.memory, stepMs: median(times[m]!) }));
  rows.push({ ...c, plain: plain!, checkpoint: checkpoint!, offload: offload! });
  console.log(`${c.name}: held ${plain!.heldAfterForwardMiB.toFixed(2)} / ${checkpoint!.heldAfterForwardMiB.toFixed(2)} / ${offload!.heldAfterForwardMiB.toFixed(2)} MiB ` +
    `(offload: ${offload!.hostMiB.toFixed(2)} MiB on the host), step ${plain!.stepMs.toFixed(1)} / ${checkpoint!.stepMs.toFixed(1)} / ${offload!.stepMs.toFixed(1)} ms`);
}

const result = {
  benchmark: 'activations off the backend (GptConfig.checkpoint, GptConfig.offload), eager training steps',
  date: new Date().toISOString(),
  backend: t.currentBackendName(),
  gcForced: gc !== undefined,
  command: 'node --expose-gc --import tsx bench/checkpoint.ts',
  rows,
};
const pct = (a: number, b: number): string => `${(100 * (a / b - 1)).toFixed(0)}%`;
const md = [
  `# Activation checkpointing and offloading: memory against step time (${t.currentBackendName()} backend)`,
  '',
  `${result.date}; \`${result.command}\`${gc === undefined ? ' (run without --expose-gc: held bytes include garbage)' : ''}. GPT with dropout 0.1, AdamW.`,
  '"held" is the backend memory kept for backward after the forward (live tensor bytes after a full GC, minus those before);',
  '"host" what offload keeps in JavaScript arrays instead; step is the median of 15 eager steps (forward, backward, AdamW), the three modes alternating step by step.',
  '',
  '| model | layers | d | ctx | batch | held: plain / checkpoint / offload (MiB) | offload host (MiB) | step: plain / checkpoint / offload (ms) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.name} | ${r.layers} | ${r.d} | ${r.ctx} | ${r.batch} | ${r.plain.heldAfterForwardMiB.toFixed(2)} / ${r.checkpoint.heldAfterForwardMiB.toFixed(2)} / ${r.offload.heldAfterForwardMiB.toFixed(2)} | ${r.offload.hostMiB.toFixed(2)} | ${r.plain.stepMs.toFixed(1)} / ${r.checkpoint.stepMs.toFixed(1)} (${pct(r.checkpoint.stepMs, r.plain.stepMs)}) / ${r.offload.stepMs.toFixed(1)} (${pct(r.offload.stepMs, r.plain.stepMs)}) |`),
  '',
].join('\n');
if (!quick) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'checkpoint.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(outDir, 'checkpoint.md'), md);
}
console.log(md);
