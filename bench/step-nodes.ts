// Where does a jitted training step spend its time? Replays the benchmark's MLP, CNN or GPT step
// (bench/workloads/tessera-models.ts, t.jit) with a node timer on (setNodeTimer in
// src/graph/interpret.ts) and prints the nodes by total wall time per step, grouped by op and
// input shapes, and the step's time outside the nodes (replay set-up, writes, the loss read).
//   node --import tsx bench/step-nodes.ts [mlp|cnn|gpt] [--steps=50] [--top=30]
// Threads: TESSERA_THREADS (default: the machine's cores, as in npm run bench).
import * as t from '../src/index.js';
import { defaultSpec } from './spec.js';
import { tesseraCnnStep, tesseraGptStep, tesseraMlpStep } from './workloads/tessera-models.js';
import { wasmBackend } from '../src/backend/wasm/backend.js';

const builders = { mlp: tesseraMlpStep, cnn: tesseraCnnStep, gpt: tesseraGptStep } as const;
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const options = new Map(process.argv.slice(2).filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=') as [string, string]));
for (const key of options.keys()) if (key !== 'steps' && key !== 'top') throw new Error(`step-nodes: unknown option --${key}; options are --steps, --top`);
const workload = (positional[0] ?? 'mlp') as keyof typeof builders;
if (!(workload in builders)) throw new Error(`step-nodes: the workload is one of ${Object.keys(builders).join(', ')}, got '${workload}'`);
const steps = Number(options.get('steps') ?? 50);
const top = Number(options.get('top') ?? 30);

t.setBackend('wasm');
const step = builders[workload](defaultSpec(false), { jit: true });
for (let i = 0; i < 5; i++) step(); // trace, compile, warm up

const byKey = new Map<string, { ms: number; calls: number }>();
t.setNodeTimer((node, inputs, ms) => {
  const key = `${node.op} ${inputs.map((x) => `[${x.shape.join(',')}]`).join(' ')}`;
  const entry = byKey.get(key) ?? { ms: 0, calls: 0 };
  entry.ms += ms;
  entry.calls++;
  byKey.set(key, entry);
});
const start = performance.now();
for (let i = 0; i < steps; i++) step();
const stepMs = (performance.now() - start) / steps;
t.setNodeTimer(undefined);

const rows = [...byKey].sort((a, b) => b[1].ms - a[1].ms);
const nodesMs = rows.reduce((sum, [, v]) => sum + v.ms, 0) / steps;
console.log(`${workload} (jit, wasm, ${wasmBackend.pool.threads} threads): ${stepMs.toFixed(2)} ms per step; nodes ${nodesMs.toFixed(2)} ms; outside the nodes ${(stepMs - nodesMs).toFixed(2)} ms`);
console.log('ms/step  share  per step  node (op, input shapes)');
for (const [key, v] of rows.slice(0, top)) {
  console.log(`${(v.ms / steps).toFixed(3).padStart(7)}  ${((100 * v.ms) / steps / stepMs).toFixed(1).padStart(4)}%  ${String(v.calls / steps).padStart(8)}  ${key}`);
}
process.exit(0);
