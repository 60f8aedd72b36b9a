// `tessera run`: starts the ranks of a distributed job on this node, like torchrun. It sets the
// environment each rank reads (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT and the
// job's shared secret TESSERA_SECRET), prefixes every output line with its rank, and, when one
// rank fails, stops the others and exits non-zero with that rank's error.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createInterface } from 'node:readline';

const USAGE = `usage: tessera run [options] script.js [script args...]

Starts nproc-per-node processes running script.js on this node; the script calls
dist.initProcessGroup(), which reads the variables set here.

options:
  --nproc-per-node N   processes on this node (default 1)
  --nnodes M           number of nodes (default 1)
  --node-rank R        this node's index, 0..M-1 (default 0)
  --master-addr A      address of the node running rank 0 (default 127.0.0.1)
  --master-port P      port of the rendezvous store on the master (default: a free port
                       on one node, 29500 on several)
  --bind-addr B        address the ranks listen on for peers (default: loopback, or the
                       interface that reaches a remote master)

With several nodes, set TESSERA_SECRET to the same random string on every node
(one node: a secret is generated). A .ts script is run through tsx.`;

export interface RunOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number | undefined;
  bindAddr: string | undefined;
  script: string;
  scriptArgs: string[];
}

function positiveInt(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min) {
    throw new Error(`tessera run: ${name} needs an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function parseRunArgs(args: readonly string[]): RunOptions {
  const o: RunOptions = { nprocPerNode: 1, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: undefined, bindAddr: undefined, script: '', scriptArgs: [] };
  let i = 0;
  for (; i < args.length; i++) {
    let a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    } else {
      value = args[i + 1];
      i++;
    }
    switch (a) {
      case '--nproc-per-node':
      case '--nproc_per_node':
        o.nprocPerNode = positiveInt(a, value, 1);
        break;
      case '--nnodes':
        o.nnodes = positiveInt(a, value, 1);
        break;
      case '--node-rank':
      case '--node_rank':
        o.nodeRank = positiveInt(a, value, 0);
        break;
      case '--master-addr':
      case '--master_addr':
        if (!value) throw new Error('tessera run: --master-addr needs an address');
        o.masterAddr = value;
        break;
      case '--master-port':
      case '--master_port':
        o.masterPort = positiveInt(a, value, 1);
        break;
      case '--bind-addr':
        if (!value) throw new Error('tessera run: --bind-addr needs an address');
        o.bindAddr = value;
        break;
      default:
        throw new Error(`tessera run: unknown option ${a}\n\n${USAGE}`);
    }
  }
  const script = args[i];
  if (script === undefined) throw new Error(`tessera run: no script given\n\n${USAGE}`);
  o.script = script;
  o.scriptArgs = args.slice(i + 1);
  if (o.nodeRank >= o.nnodes) throw new Error(`tessera run: --node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
  return o;
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Forwards a stream line by line with a prefix; keeps the last lines for the failure report. */
function pipeLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream, tail: string[] | undefined): Promise<void> {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => {
    out.write(`${prefix}${line}\n`);
    if (tail) {
      tail.push(line);
      if (tail.length > 30) tail.shift();
    }
  });
  return new Promise((resolve) => rl.on('close', () => resolve()));
}

export async function launch(o: RunOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<number> {
  const worldSize = o.nnodes * o.nprocPerNode;
  let secret = process.env['TESSERA_SECRET'];
  if (!secret) {
    if (o.nnodes > 1) {
      throw new Error('tessera run: with several nodes, set TESSERA_SECRET to the same random string on every node (e.g. `export TESSERA_SECRET=$(openssl rand -hex 32)`)');
    }
    secret = randomBytes(32).toString('hex');
  }
  const masterPort = o.masterPort ?? (o.nnodes > 1 ? 29500 : await freePort(o.masterAddr));
  const nodeArgs = /\.[cm]?ts$/.test(o.script) ? ['--import', 'tsx'] : [];
  const children: ChildProcess[] = [];
  let failure: { rank: number; code: number; description: string; tail: string[] } | undefined;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`tessera run: received ${signal}; stopping the ranks`);
    failure ??= { rank: -1, code: 130, description: `interrupted by ${signal}`, tail: [] };
    stopAll('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const exits: Promise<void>[] = [];
  for (let local = 0; local < o.nprocPerNode; local++) {
    const rank = o.nodeRank * o.nprocPerNode + local;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(o.nprocPerNode),
      NODE_RANK: String(o.nodeRank),
      GROUP_RANK: String(o.nodeRank),
      MASTER_ADDR: o.masterAddr,
      MASTER_PORT: String(masterPort),
      TESSERA_SECRET: secret,
    };
    if (o.bindAddr) env['TESSERA_BIND_ADDR'] = o.bindAddr;
    const child = spawn(process.execPath, [...nodeArgs, o.script, ...o.scriptArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const tail: string[] = [];
    const prefix = `[rank ${rank}] `;
    const streams = Promise.all([pipeLines(child.stdout!, prefix, process.stdout, undefined), pipeLines(child.stderr!, prefix, process.stderr, tail)]);
    exits.push(
      new Promise<void>((resolve) => {
        child.on('error', (err) => {
          failure ??= { rank, code: 1, description: `could not start: ${err.message}`, tail };
          stopAll('SIGTERM');
        });
        child.on('exit', (code, signal) => {
          void streams.then(() => {
            if ((code !== 0 || signal !== null) && !failure) {
              failure = { rank, code: code && code > 0 ? code : 1, description: signal ? `was killed by ${signal}` : `exited with code ${code}`, tail };
              log(`tessera run: rank ${rank} ${failure.description}; stopping the other ranks`);
              stopAll('SIGTERM');
              killTimer = setTimeout(() => stopAll('SIGKILL'), 5000);
            }
            resolve();
          });
        });
      }),
    );
  }
  await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (!failure) return 0;
  if (failure.rank >= 0) {
    const lines = failure.tail.length > 0 ? `; its last error output:\n${failure.tail.map((l) => `  ${l}`).join('\n')}` : '';
    log(`tessera run: the job failed because rank ${failure.rank} ${failure.description}${lines}`);
  }
  return failure.code;
}

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  try {
    return await launch(parseRunArgs(args));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
}
