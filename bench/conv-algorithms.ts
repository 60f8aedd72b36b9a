// The two convolution paths of the wasm backend, side by side (src/ops/nn/conv-algorithm.ts):
// each pass (forward with bias, weight gradient) of the bench CNN's two convolutions timed both
// ways through the backend's kernels (the measurement the automatic choice makes, best of several
// alternating runs), then the whole CNN training step with convolutions forced onto im2col + GEMM
// against the automatic choice, in alternating rounds in one process (CPU time and best wall).
//   TESSERA_THREADS=1 node --import tsx bench/conv-algorithms.ts [steps per round] [rounds]
import * as t from '../src/index.js';
import { wasmBackend } from '../src/backend/wasm/backend.js';
import { timings } from '../src/ops/nn/conv-algorithm.js';
import { defaultSpec } from './spec.js';
import { tesseraCnnStep } from './workloads/tessera-models.js';

t.setBackend('wasm');
const pads: [number, number][] = [[1, 1], [1, 1]];
const attrs = { kernel: [3, 3], stride: [1, 1], dilation: [1, 1], pads, groups: 1 };
const spec = defaultSpec(false);
const c = spec.cnn;
const convs = [
  ['conv1', [c.batch, 1, c.hw, c.hw], c.c1],
  ['conv2', [c.batch, c.c1, c.hw / 2, c.hw / 2], c.c2],
] as const;
for (const [name, inputShape, outChannels] of convs) {
  for (const pass of ['forward', 'weightGrad'] as const) {
    const r = timings(pass, { backend: wasmBackend, dtype: 'float32', inputShape, outChannels, bias: true, attrs });
    console.log(`${name} ${pass.padEnd(10)} direct ${r.direct.toFixed(2).padStart(7)} ms   im2col + GEMM ${r.im2col.toFixed(2).padStart(7)} ms`);
  }
}

const steps = Number(process.argv[2] ?? 10), rounds = Number(process.argv[3] ?? 3);
const step = tesseraCnnStep(spec);
const modes = ['im2col', 'auto'] as const;
const result = Object.fromEntries(modes.map((m) => [m, { cpu: [] as number[], best: Infinity }]));
for (const mode of modes) {
  t.setConvAlgorithm(mode);
  for (let i = 0; i < 3; i++) step();
}
for (let r = 0; r < rounds; r++) {
  for (const mode of modes) {
    t.setConvAlgorithm(mode);
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      step();
      result[mode]!.best = Math.min(result[mode]!.best, performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    result[mode]!.cpu.push((cpu.user + cpu.system) / 1000 / steps);
  }
}
t.setConvAlgorithm('auto');
for (const mode of modes) {
  const r = result[mode]!;
  console.log(`CNN step, convolutions ${mode.padEnd(6)}: CPU ms per step per round ${r.cpu.map((x) => x.toFixed(1)).join(' ')}, best wall ${r.best.toFixed(1)} ms`);
}
console.log(`automatic choices: ${JSON.stringify([...t.convAlgorithmChoices()])}`);
