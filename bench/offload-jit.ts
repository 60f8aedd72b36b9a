// Activation offloading under jit: a compiled GPT training step (forward, backward, Adam) on the
// wasm backend, plainly and with GptConfig.offload, whose traced step then holds offloadStore /
// offloadFetch nodes (graph/offload-ops.ts). Reports the replay's peak on the wasm backend above
// what was live before the call (memoryStats().byBackend.wasm), the host bytes the graph copies,
// and the median step time, the two modes alternating call by call.
//
//   node --expose-gc --import tsx bench/offload-jit.ts [--layers=2,4,8] [--out=bench/results]
//
// Expected before measuring: the peak falls to the blocks' inputs and outputs plus one block's
// working set (about 0.4x for 4 layers), for two memory-bound copies of each saved tensor (+5-10%).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src/index.js';
import type { Tensor } from '../src/index.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const outDir = args.get('out') ?? 'bench/results';
t.setBackend('wasm');

const MiB = 2 ** 20;
interface Row { layers: number; mode: string; peakMiB: number; hostMiB: number; stepMs: number }
const rows: Row[] = [];
for (const layers of (args.get('layers') ?? '2,4,8').split(',').map(Number)) {
  const cfg = { vocabSize: 65, blockSize: 64, embedDim: 128, numHeads: 4, numLayers: layers, dropout: 0.1 };
  const batch = 16;
  const x = t.randint(0, 65, [batch, 64]), y = t.randint(0, 65, [batch * 64]);
  const make = (offload: boolean) => {
    t.manualSeed(3);
    const gpt = new t.nn.GPT({ ...cfg, offload });
    const opt = new t.optim.Adam(gpt.parameters(), { lr: 1e-3 });
    return t.jit((ids: Tensor) => {
      opt.zeroGrad();
      const loss = t.crossEntropy(gpt.call(ids).reshape([batch * 64, 65]), y);
      loss.backward();
      opt.step();
      return loss;
    });
  };
  const modes = { plain: make(false), offload: make(true) };
  const times: Record<string, number[]> = { plain: [], offload: [] };
  const peaks: Record<string, number> = {};
  for (let call = 0; call < 14; call++) {
    for (const [mode, step] of Object.entries(modes)) {
      const before = t.memoryStats().byBackend.wasm?.liveBytes ?? 0;
      t.resetPeakMemory();
      const started = performance.now();
      const loss = step(x);
      loss.item();
      if (call >= 4) times[mode]!.push(performance.now() - started);
      peaks[mode] = (t.memoryStats().byBackend.wasm?.peakBytes ?? 0) - before;
      loss.dispose();
    }
  }
  for (const [mode, step] of Object.entries(modes)) {
    const sorted = times[mode]!.sort((a, b) => a - b);
    const graph = t.compiler.runPipeline(step.graphs()[0]!.traced.clone()).graph;
    rows.push({ layers, mode, peakMiB: peaks[mode]! / MiB, hostMiB: t.compiler.memoryPlan(graph).hostBytes / MiB, stepMs: sorted[sorted.length >> 1]! });
  }
  // The traces' intermediates are garbage now; their wasm blocks return through a
  // FinalizationRegistry, whose callbacks run only once the event loop turns.
  await settle();
}

async function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 50));
}

const lines = [
  '# Activation offloading under jit (compiled GPT step on wasm)',
  '',
  `Measured ${new Date().toISOString()} by \`node --expose-gc --import tsx bench/offload-jit.ts\`: GPT vocab 65, context 64, d 128, 4 heads, batch 16, dropout 0.1,`,
  'forward + backward + Adam jitted; peak = the replay\'s highest wasm-backend bytes above those live before the call;',
  'host = bytes the graph copies to host arrays (offloadStore outputs); step = median of 10 calls, the modes alternating.',
  '',
  '| layers | mode | replay peak on wasm (MiB) | host copies (MiB) | step (ms) |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.layers} | ${r.mode} | ${r.peakMiB.toFixed(2)} | ${r.hostMiB.toFixed(2)} | ${r.stepMs.toFixed(1)} |`),
  '',
];
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'offload-jit.md'), lines.join('\n'));
writeFileSync(join(outDir, 'offload-jit.json'), JSON.stringify({ rows }, null, 2));
console.log(lines.join('\n'));
