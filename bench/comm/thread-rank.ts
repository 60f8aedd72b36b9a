// One rank of the thread-transport benchmark (run by spawnThreadRanks).
import { initProcessGroup } from '../../src/dist/index.js';
import type { ThreadRankContext } from '../../src/dist/index.js';
import type { BenchPlan, RankReport } from './cases.js';
import { runCases } from './cases.js';

export default async function benchRank({ rank, args }: ThreadRankContext<BenchPlan>): Promise<RankReport | undefined> {
  const pg = await initProcessGroup({ timeoutMs: 600_000 });
  const report = await runCases(pg, args, (l) => console.log(l));
  await pg.destroy();
  return rank === 0 ? report : undefined;
}
