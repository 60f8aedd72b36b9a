// One rank of the TCP benchmark (started by `tessera run`): reads the plan from BENCH_PLAN,
// rank 0 writes its report to BENCH_OUT.
import { readFileSync, writeFileSync } from 'node:fs';
import { initProcessGroup } from '../../src/dist/index.js';
import type { BenchPlan } from './cases.js';
import { runCases } from './cases.js';

const plan = JSON.parse(readFileSync(process.env['BENCH_PLAN']!, 'utf8')) as BenchPlan;
const pg = await initProcessGroup({ timeoutMs: 600_000 });
const report = await runCases(pg, plan, (l) => console.log(l));
if (pg.rank === 0) writeFileSync(process.env['BENCH_OUT']!, JSON.stringify(report));
await pg.destroy();
