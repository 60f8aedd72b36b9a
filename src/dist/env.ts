// Reads rank and world size the way existing launchers publish them, so that a script started
// by torchrun, mpirun, srun or `tessera run` finds its place without arguments.

export interface LaunchEnv {
  rank?: number;
  worldSize?: number;
  localRank?: number;
  masterAddr?: string;
  masterPort?: number;
  secret?: string;
  /** Which launcher's variables were found. */
  source?: 'torchrun' | 'mpirun' | 'slurm';
}

function intVar(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`environment variable ${name}=${JSON.stringify(v)} is not a non-negative integer`);
  return n;
}

export function readLaunchEnv(env: Readonly<Record<string, string | undefined>>): LaunchEnv {
  const out: LaunchEnv = {};
  if (env['RANK'] !== undefined && env['WORLD_SIZE'] !== undefined) {
    out.rank = intVar(env, 'RANK');
    out.worldSize = intVar(env, 'WORLD_SIZE');
    out.localRank = intVar(env, 'LOCAL_RANK');
    out.source = 'torchrun';
  } else if (env['OMPI_COMM_WORLD_RANK'] !== undefined) {
    out.rank = intVar(env, 'OMPI_COMM_WORLD_RANK');
    out.worldSize = intVar(env, 'OMPI_COMM_WORLD_SIZE');
    out.localRank = intVar(env, 'OMPI_COMM_WORLD_LOCAL_RANK');
    out.source = 'mpirun';
  } else if (env['SLURM_PROCID'] !== undefined) {
    out.rank = intVar(env, 'SLURM_PROCID');
    out.worldSize = intVar(env, 'SLURM_NTASKS');
    out.localRank = intVar(env, 'SLURM_LOCALID');
    out.source = 'slurm';
  }
  if (env['MASTER_ADDR']) out.masterAddr = env['MASTER_ADDR'];
  const port = intVar(env, 'MASTER_PORT');
  if (port !== undefined) out.masterPort = port;
  if (env['TESSERA_SECRET']) out.secret = env['TESSERA_SECRET'];
  return out;
}
