// Bytes each FSDP (ZeRO-3) rank holds for a GPT whose head is tied to its token embedding, with
// the GPT's parts as units (embeddings, each block, ln_f + head; the tied weight in a shared
// space) against the whole GPT as one unit; Adam, thread ranks, cpu backend. Each setting runs in
// its own launch, so memoryStats() sees only that setting's tensors.
//
//   node --expose-gc --import tsx bench/fsdp-memory.ts [--ranks=2] [--vocab=512] [--d=64] [--layers=4] [--heads=4]
//     [--seq=32] [--batch=8] [--dtype=float32] [--out=FILE]   (--out refuses to overwrite a file)
//
// Reported per rank (rank 0; the others differ by an element or two per space):
//   shardBytes, optimizerStateBytes, bufferBytes (wholeBufferBytes of it), bufferAllocations,
//     peakGatheredBytes: FsdpMemory (fsdp.memory(), after the third step);
//   groupScratchBytes: the process group's scratch buffers kept for reuse (group.scratchBytes; not
//     FSDP's, so not in memory(): the reduce-scatter's copy of its input);
//   liveBytes: memoryStats() after the second step and a garbage collection (tensors only: shards,
//     optimizer state, data);
//   stepPeakBytes: memoryStats() peak during the third step, above liveBytes: whole parameters and
//     gradients, activations and the recomputations' graphs, and also intermediates that are
//     garbage but not yet collected (tessera frees those through finalizers), so an upper bound.
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as t from '../src/index.js';
import { FullyShardedDataParallel, initProcessGroup, runThreadRanks, type FsdpMemory, type ThreadRankContext } from '../src/dist/index.js';

interface Args { vocab: number; d: number; layers: number; heads: number; seq: number; batch: number; dtype: 'float32' | 'float64'; units: 'parts' | 'one' }
interface Measured extends FsdpMemory { parameters: number; sharedElements: number; groupScratchBytes: number; liveBytes: number; stepPeakBytes: number }

/** Collects garbage and lets the finalizers release what it held (node --expose-gc), so memoryStats counts live tensors only. */
async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('bench/fsdp-memory: run node with --expose-gc (see the header).');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function rank({ rank: r, worldSize, args }: ThreadRankContext<Args>): Promise<Measured> {
  t.setBackend('cpu');
  const group = await initProcessGroup({ timeoutMs: 120_000 });
  t.manualSeed(1);
  const gpt = new t.nn.GPT({ vocabSize: args.vocab, blockSize: args.seq, embedDim: args.d, numHeads: args.heads, numLayers: args.layers }, { dtype: args.dtype });
  const parameters = gpt.parameterCount();
  const fsdp = await FullyShardedDataParallel.create(args.units === 'parts' ? gpt.parts() : [gpt], group, (s) => new t.optim.Adam(s, { lr: 1e-3 }));
  t.manualSeed(10 + r);
  const rows = args.batch / worldSize;
  const x = t.randint(0, args.vocab, [rows, args.seq]);
  const y = t.randint(0, args.vocab, [rows * args.seq]);
  const step = async (): Promise<void> => {
    fsdp.zeroGrad();
    const loss = t.crossEntropy(t.nn.flattenLogits(await fsdp.forward(x)), y);
    await fsdp.backward(loss);
    fsdp.step();
    fsdp.zeroGrad();
  };
  await step();
  await step();
  await collectGarbage();
  const liveBytes = t.memoryStats().liveBytes;
  t.resetPeakMemory();
  await step();
  const stepPeakBytes = t.memoryStats().peakBytes - liveBytes;
  const sharedElements = fsdp.flatSpaces().filter((s) => s.users.length > 1).reduce((n, s) => n + s.elements, 0);
  const result = { ...fsdp.memory(), groupScratchBytes: group.scratchBytes, parameters, sharedElements, liveBytes, stepPeakBytes };
  await group.destroy();
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v!] as const; }));
  const ranks = Number(opts.get('ranks') ?? 2);
  const base = {
    vocab: Number(opts.get('vocab') ?? 512), d: Number(opts.get('d') ?? 64), layers: Number(opts.get('layers') ?? 4), heads: Number(opts.get('heads') ?? 4),
    seq: Number(opts.get('seq') ?? 32), batch: Number(opts.get('batch') ?? 8), dtype: (opts.get('dtype') ?? 'float32') as Args['dtype'],
  };
  const out = opts.get('out');
  if (out !== undefined && existsSync(out)) throw new Error(`bench/fsdp-memory: ${out} exists; give another --out.`);
  process.env.TESSERA_THREADS = '1';
  const results: Record<string, Measured> = {};
  for (const units of ['parts', 'one'] as const) {
    const [first] = await runThreadRanks<Args, Measured>({ worldSize: ranks, module: new URL(import.meta.url), exportName: 'rank', args: { ...base, units } });
    results[units] = first!;
  }
  const width = base.dtype === 'float64' ? 8 : 4;
  const n = results.parts!.parameters;
  console.log(`GPT vocab ${base.vocab}, d ${base.d}, ${base.layers} layers, seq ${base.seq}, ${base.dtype}: ${n} parameters (${n * width} B), ` +
    `tied embedding ${results.parts!.sharedElements} elements; Adam; ${ranks} thread ranks, ${base.batch / ranks} sequences per rank; bytes on rank 0`);
  const keys = ['shardBytes', 'optimizerStateBytes', 'bufferBytes', 'wholeBufferBytes', 'bufferAllocations', 'groupScratchBytes', 'peakGatheredBytes', 'liveBytes', 'stepPeakBytes'] as const;
  console.log(['', ...keys].map((k) => k.padStart(20)).join(''));
  for (const [name, m] of Object.entries(results)) {
    console.log([name === 'parts' ? 'parts (per block)' : 'one unit', ...keys.map((k) => String(m[k]))].map((s) => s.padStart(20)).join(''));
  }
  console.log(`one process (no FSDP): parameters + gradients + Adam's two moments = ${4 * n * width} B`);
  if (out !== undefined) writeFileSync(out, `${JSON.stringify({ ranks, ...base, results }, null, 2)}\n`, { flag: 'wx' });
}
