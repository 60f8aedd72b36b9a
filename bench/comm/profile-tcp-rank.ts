// One TCP rank of profile-allreduce.ts (started by the launcher; prints its own timings).
import { profileRank } from './profile-allreduce.js';
import type { ProfileArgs } from './profile-allreduce.js';

const args = JSON.parse(process.env['PROFILE_ARGS'] ?? '{}') as ProfileArgs;
const result = await profileRank({ rank: Number(process.env['RANK']), worldSize: Number(process.env['WORLD_SIZE']), args });
console.log(JSON.stringify(result));
