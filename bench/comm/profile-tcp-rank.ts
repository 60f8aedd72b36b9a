// One TCP rank of profile-allreduce.ts (started by the launcher; prints its own timings).
// With PROFILE_CPU_DIR set, also writes this rank's CPU profile there (`--cpu-prof` is not
// allowed in NODE_OPTIONS, so the launcher's children cannot be given it).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { profileRank } from './profile-allreduce.js';
import type { ProfileArgs } from './profile-allreduce.js';

const args = JSON.parse(process.env['PROFILE_ARGS'] ?? '{}') as ProfileArgs;
const dir = process.env['PROFILE_CPU_DIR'];
const session = dir ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const rank = Number(process.env['RANK']);
const result = await profileRank({ rank, worldSize: Number(process.env['WORLD_SIZE']), args });
if (session && dir) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(join(dir, `tcp-rank${rank}.cpuprofile`), JSON.stringify(profile));
}
console.log(JSON.stringify(result));
