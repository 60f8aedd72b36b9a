// Expert parallelism in the planner: the all-to-all cost, memory, communication volumes, step
// time and search for MoE models. The expected values are computed here from the architecture
// by hand (parameter split into dense and expert parts), independently of memory.ts' code path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alphaBetaOf, bestCollective, collectiveTime, communicationVolumes, countParams, flopsPerToken, link, memoryPerDevice, modelPreset,
  parallelConfig, parseCluster, searchParallelConfigs, stepTime, transformer, validateParallelConfig, withConventions,
} from '../../src/plan/index.js';

const close = (x: number, y: number, what = ''): void => assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)), `${what}: ${x} vs ${y}`);
const mixtral = modelPreset('mixtral-8x7b');
const conv = withConventions();

/** Mixtral's parameters split by hand: 8 SwiGLU experts of 3·h·ffn per layer, everything else dense. */
function mixtralSplit(): { experts: number; dense: number } {
  const experts = 32 * 8 * 3 * 4096 * 14336;
  return { experts, dense: countParams(mixtral).total - experts };
}

test('all-to-all: pairwise (p−1)(α + nβ/p), Bruck ⌈log p⌉(α + nβ/2); small messages pick Bruck, large ones pairwise', () => {
  const ab = { alpha: 5e-6, beta: 1 / 20e9 };
  const n = 64e6, p = 8;
  close(collectiveTime('all-to-all', 'pairwise', n, p, ab)!, 7 * (ab.alpha + (n / 8) * ab.beta), 'pairwise');
  close(collectiveTime('all-to-all', 'bruck', n, p, ab)!, 3 * (ab.alpha + (n / 2) * ab.beta), 'bruck');
  assert.equal(collectiveTime('all-to-all', 'ring', n, p, ab), undefined);
  assert.equal(collectiveTime('all-reduce', 'pairwise', n, p, ab), undefined);
  assert.equal(collectiveTime('all-to-all', 'pairwise', n, 1, ab), 0);
  assert.equal(bestCollective('all-to-all', 1e3, 64, ab).algorithm, 'bruck');
  assert.equal(bestCollective('all-to-all', 1e9, 64, ab).algorithm, 'pairwise');
  // Every rank must send (p−1)/p of its buffer whatever the algorithm.
  for (const alg of ['pairwise', 'bruck'] as const) assert.ok(collectiveTime('all-to-all', alg, n, p, ab)! >= (7 / 8) * n * ab.beta);
});

test('memory: a device holds experts/ep of each MoE layer; ZeRO shards dense states over dp, expert states over dp/ep', () => {
  const { experts, dense } = mixtralSplit();
  const base = { dp: 8, tp: 1, pp: 1, globalBatch: 8, microBatch: 1 };
  for (const ep of [1, 2, 4, 8]) {
    const mem = memoryPerDevice(mixtral, conv, parallelConfig({ ...base, ep }));
    close(mem.weights, 2 * (dense + experts / ep), `weights ep ${ep}`);
    close(mem.optimizer, 12 * (dense + experts / ep), `optimizer ep ${ep}`);
    close(mem.expertParamsPerDevice, experts / ep, `expert params ep ${ep}`);
  }
  // ZeRO-3 over the 8 data-parallel ranks with EP 2: each expert lives on 4 ranks and is sharded over them.
  const z3 = memoryPerDevice(mixtral, conv, parallelConfig({ ...base, ep: 2, zero: 3 }));
  close(z3.weights, 2 * (dense / 8 + experts / 2 / 4), 'ZeRO-3 weights');
  close(z3.gradients, 2 * (dense / 8 + experts / 2 / 4), 'ZeRO-3 gradients');
  // EP = DP: every expert on one rank, nothing left to shard; the dense part still shards 8 ways.
  const z1 = memoryPerDevice(mixtral, conv, parallelConfig({ ...base, ep: 8, zero: 1 }));
  close(z1.optimizer, 12 * (dense / 8 + experts / 8), 'ZeRO-1 optimizer, EP 8');
  // The all-to-all send and receive buffers: 2 × 2 bytes × b·s·k·h.
  const noEp = memoryPerDevice(mixtral, conv, parallelConfig(base));
  const withEp = memoryPerDevice(mixtral, conv, parallelConfig({ ...base, ep: 2 }));
  close(withEp.temporary - noEp.temporary, 2 * 2 * 4096 * 2 * 4096, 'all-to-all buffers');
  close(withEp.activations, noEp.activations, 'activations do not depend on EP');
});

test('communication volumes: 4 all-to-alls of b·s·k·cf·h/t per MoE layer per micro-batch; expert gradients reduce over dp/ep', () => {
  const { experts, dense } = mixtralSplit();
  const b = 1, s = 4096, k = 2, h = 4096, L = 32;
  const cfg = parallelConfig({ dp: 16, ep: 4, microBatch: b, globalBatch: 64 }); // 4 micro-batches
  const v = communicationVolumes(mixtral, conv, cfg);
  close(v.expertParallel, 4 * L * 4 * 2 * b * s * k * h * (3 / 4), 'all-to-all volume');
  close(v.dataParallel, 2 * (dense * (2 * 15) / 16 + (experts / 4) * (2 * 3) / 4), 'dense over 16 ranks, experts over 4');
  // Full recomputation reruns the forward all-to-alls; sequence parallelism splits tokens over TP.
  close(communicationVolumes(mixtral, conv, { ...cfg, recompute: 'full' }).expertParallel, v.expertParallel * 6 / 4, 'full recompute');
  const sp = communicationVolumes(mixtral, conv, parallelConfig({ dp: 16, tp: 2, sequenceParallel: true, ep: 4, microBatch: b, globalBatch: 64 }));
  close(sp.expertParallel, v.expertParallel / 2, 'sequence parallel');
  // A capacity factor pads every slot: the exchange grows with it.
  const padded = transformer({ ...mixtral, moe: { experts: 8, topK: 2, capacityFactor: 1.25 } });
  close(communicationVolumes(padded, conv, cfg).expertParallel, v.expertParallel * 1.25, 'capacity factor');
  assert.equal(communicationVolumes(mixtral, conv, parallelConfig({ dp: 16, microBatch: b, globalBatch: 64 })).expertParallel, 0);
});

test('step time: the all-to-alls are on the critical path of every MoE layer; parts add up; dense models are unchanged by the EP code', () => {
  const c = parseCluster('4x8xH100');
  const cfg = parallelConfig({ dp: 32, ep: 8, microBatch: 1, globalBatch: 256, recompute: 'selective', zero: 1 });
  const st = stepTime(mixtral, conv, c, cfg);
  const a2aBytes = 2 * 4096 * 2 * 4096;
  const oneCall = bestCollective('all-to-all', a2aBytes, 8, alphaBetaOf(link('nvlink4'))).seconds;
  const microBatches = 256 / 32;
  close(st.parts.expertParallelComm, microBatches * 32 * 4 * oneCall, 'EP seconds');
  const ep = st.comms.find((x) => x.kind === 'ep')!;
  assert.equal(ep.collective, 'all-to-all');
  assert.equal(ep.link, 'nvlink4'); // 8 consecutive ranks fill a node
  assert.deepEqual(st.comms.filter((x) => x.kind === 'dp' || x.kind === 'expert-dp').map((x) => [x.kind, x.ranks]), [['dp', 32], ['expert-dp', 4]]);
  close(Object.values(st.parts).reduce((x, y) => x + y, 0), st.seconds, 'parts');
  // EP across nodes is slower than inside one.
  const wide = stepTime(mixtral, conv, parseCluster('8x4xH100'), cfg);
  assert.ok(wide.parts.expertParallelComm > st.parts.expertParallelComm);
  // Without EP there is no all-to-all and one gradient reduction of all weights.
  const noEp = stepTime(mixtral, conv, c, { ...cfg, ep: 1 });
  assert.equal(noEp.parts.expertParallelComm, 0);
  assert.deepEqual(noEp.comms.filter((x) => x.kind.endsWith('dp')).map((x) => x.kind), ['dp']);
});

test('capacity factor: expert compute and HFU count the padded slots, MFU does not', () => {
  const padded = transformer({ ...mixtral, moe: { experts: 8, topK: 2, capacityFactor: 1.5 } });
  const f = flopsPerToken(mixtral, conv), g = flopsPerToken(padded, conv);
  assert.equal(g.model, f.model);
  close(g.hardware - f.hardware, 3 * 2 * 32 * (2 * 1.5 - 2) * 3 * 4096 * 14336, 'padding FLOPs');
  const c = parseCluster('1x8xH100');
  const cfg = parallelConfig({ dp: 8, ep: 8, globalBatch: 8 });
  assert.ok(stepTime(padded, conv, c, cfg).seconds > stepTime(mixtral, conv, c, cfg).seconds);
  assert.throws(() => transformer({ ...mixtral, moe: { experts: 8, topK: 2, capacityFactor: 0 } }), /capacityFactor must be a finite number > 0/);
});

test('validation names what is wrong with an expert-parallel configuration', () => {
  const c = parseCluster('1x8xH100');
  assert.match(validateParallelConfig(modelPreset('gpt3-1.3b'), c, parallelConfig({ dp: 8, ep: 2, globalBatch: 8 }))!, /^expert-parallel: EP 2 needs an MoE model/);
  assert.match(validateParallelConfig(mixtral, c, parallelConfig({ dp: 8, ep: 3, globalBatch: 8 }))!, /8 experts do not split over EP 3/);
  assert.match(validateParallelConfig(mixtral, c, parallelConfig({ dp: 2, tp: 4, ep: 4, globalBatch: 8 }))!, /EP 4 must divide DP 2/);
  assert.equal(validateParallelConfig(mixtral, c, parallelConfig({ dp: 8, ep: 8, globalBatch: 8 })), undefined);
});

test('search: tries expert-parallel degrees for MoE models only, and picks one for Mixtral at its training batch', () => {
  const c = parseCluster('8x8xH100');
  const r = searchParallelConfigs(mixtral, conv, c, { globalBatch: 1024, top: 20 });
  assert.ok(r.ranked.some((x) => x.config.ep > 1), 'some ranked configurations use EP');
  assert.ok(r.ranked[0]!.config.ep > 1, `best: EP ${r.ranked[0]!.config.ep}`);
  for (const x of r.ranked) assert.equal(x.config.dp % x.config.ep, 0);
  const only1 = searchParallelConfigs(mixtral, conv, c, { globalBatch: 1024, expertParallel: [1] });
  assert.ok(only1.ranked.every((x) => x.config.ep === 1));
  assert.ok(only1.ranked[0]!.step.seconds >= r.ranked[0]!.step.seconds);
  const dense = searchParallelConfigs(modelPreset('gpt3-1.3b'), conv, parseCluster('1x8xA100'), { top: 50 });
  assert.ok(dense.ranked.every((x) => x.config.ep === 1));
});
