// Measures α, β and γ for the cost model at start-up: ping-pong between ranks 0 and 1 at two
// message sizes (α = half the small round trip; β from the difference), and a timed reduction
// for γ. Rank 0 broadcasts its numbers so that every rank chooses algorithms identically.
import type { CostModel } from './cost-model.js';
import { fitAlphaBeta } from './cost-model.js';
import type { ProcessGroup } from './process-group.js';
import { reduceInto } from './reduce-kernels.js';

const SMALL = 8;
const LARGE = 1 << 20;
const REPEATS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function measureCostModel(world: ProcessGroup, scratch: (bytes: number) => ArrayBufferLike): Promise<CostModel> {
  const result = new Float64Array(3);
  if (world.rank <= 1) {
    const peer = 1 - world.rank;
    const samples: { bytes: number; seconds: number }[] = [];
    for (const bytes of [SMALL, LARGE]) {
      const msg = new Float64Array(scratch(bytes), 0, bytes / 8);
      const times: number[] = [];
      for (let i = 0; i <= REPEATS; i++) {
        const t0 = performance.now();
        if (world.rank === 0) {
          await world.send(msg, peer);
          await world.recv(msg, peer);
        } else {
          await world.recv(msg, peer);
          await world.send(msg, peer);
        }
        if (i > 0) times.push((performance.now() - t0) / 1000 / 2);
      }
      samples.push({ bytes, seconds: median(times) });
    }
    const { alpha, beta } = fitAlphaBeta(samples);
    const a = new Float32Array(LARGE / 4).fill(1);
    const b = new Float32Array(LARGE / 4).fill(2);
    const times: number[] = [];
    for (let i = 0; i <= REPEATS; i++) {
      const t0 = performance.now();
      reduceInto(a, b, 'sum');
      if (i > 0) times.push((performance.now() - t0) / 1000);
    }
    result.set([alpha, beta, median(times) / LARGE]);
  }
  await world.broadcast(result, { root: 0, algorithm: 'tree' });
  return { alpha: result[0]!, beta: result[1]!, gamma: result[2]! };
}
