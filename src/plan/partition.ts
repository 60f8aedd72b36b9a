// Splitting a sequence of layers into contiguous pipeline stages so that the slowest stage is as
// fast as possible, without any stage exceeding a memory budget. Dynamic programming over
// prefixes (the operator-clustering DP of Alpa §5.2, G(k, r) = min_i max(G(i, r−1), C(i+1, k))).

export interface LayerCost {
  /** Seconds (or any additive cost) of the layer's forward + backward. */
  time: number;
  /** Bytes the layer needs on the device holding it (weights, states, activations). */
  memory?: number;
}

export interface Partition {
  /** Index of the first layer of each stage; stage i is layers [starts[i], starts[i+1]). */
  starts: number[];
  stageTimes: number[];
  stageMemory: number[];
  /** The slowest stage's time: what the pipeline runs at. */
  bottleneck: number;
}

export function partitionLayers(layers: readonly LayerCost[], stages: number, memoryBudget = Infinity): Partition {
  const n = layers.length;
  if (!Number.isInteger(stages) || stages < 1) throw new Error(`partitionLayers: stages must be a positive integer, got ${stages}.`);
  if (stages > n) throw new Error(`partitionLayers: cannot split ${n} layers into ${stages} non-empty stages; use at most ${n} stages.`);
  const tPre = [0], mPre = [0];
  for (const l of layers) {
    if (!(l.time >= 0) || !((l.memory ?? 0) >= 0)) throw new Error(`partitionLayers: layer costs must be >= 0, got time=${l.time}, memory=${String(l.memory)}.`);
    tPre.push(tPre[tPre.length - 1]! + l.time);
    mPre.push(mPre[mPre.length - 1]! + (l.memory ?? 0));
  }
  const cost = (i: number, j: number): number => (mPre[j]! - mPre[i]! > memoryBudget ? Infinity : tPre[j]! - tPre[i]!);
  // best[r][k]: the smallest bottleneck splitting the first k layers into r stages.
  const best: number[][] = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(Infinity));
  const choice: number[][] = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(-1));
  best[0]![0] = 0;
  for (let r = 1; r <= stages; r++) {
    for (let k = r; k <= n - (stages - r); k++) {
      for (let i = r - 1; i < k; i++) {
        const v = Math.max(best[r - 1]![i]!, cost(i, k));
        if (v < best[r]![k]!) { best[r]![k] = v; choice[r]![k] = i; }
      }
    }
  }
  if (best[stages]![n] === Infinity) {
    const biggest = Math.max(...layers.map((l) => l.memory ?? 0));
    throw new Error(`partitionLayers: no split of ${n} layers into ${stages} stages fits ${memoryBudget} bytes per stage (largest layer ${biggest} bytes); use more stages or a larger budget.`);
  }
  const starts: number[] = [];
  for (let r = stages, k = n; r > 0; r--) {
    const i = choice[r]![k]!;
    starts.unshift(i);
    k = i;
  }
  const ends = [...starts.slice(1), n];
  const stageTimes = starts.map((s, i) => tPre[ends[i]!]! - tPre[s]!);
  const stageMemory = starts.map((s, i) => mPre[ends[i]!]! - mPre[s]!);
  return { starts, stageTimes, stageMemory, bottleneck: Math.max(...stageTimes) };
}
