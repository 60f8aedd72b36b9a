// Rank and world size from the variables of torchrun, mpirun and srun.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readLaunchEnv } from '../../src/dist/index.js';

test('torchrun variables', () => {
  const e = readLaunchEnv({ RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '1', MASTER_ADDR: '10.1.2.3', MASTER_PORT: '29501', TESSERA_SECRET: 's' });
  assert.deepEqual(e, { rank: 3, worldSize: 8, localRank: 1, source: 'torchrun', masterAddr: '10.1.2.3', masterPort: 29501, secret: 's' });
});

test('mpirun (Open MPI) variables', () => {
  const e = readLaunchEnv({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '0' });
  assert.deepEqual(e, { rank: 2, worldSize: 4, localRank: 0, source: 'mpirun' });
});

test('Slurm variables', () => {
  const e = readLaunchEnv({ SLURM_PROCID: '5', SLURM_NTASKS: '6', SLURM_LOCALID: '1', MASTER_ADDR: 'node01' });
  assert.deepEqual(e, { rank: 5, worldSize: 6, localRank: 1, source: 'slurm', masterAddr: 'node01' });
});

test('torchrun wins over Slurm when both are set; bad values are explained', () => {
  assert.equal(readLaunchEnv({ RANK: '0', WORLD_SIZE: '2', SLURM_PROCID: '1', SLURM_NTASKS: '2' }).source, 'torchrun');
  assert.deepEqual(readLaunchEnv({}), {});
  assert.throws(() => readLaunchEnv({ RANK: 'x', WORLD_SIZE: '2' }), /RANK="x" is not a non-negative integer/);
});
