// A parameter server (Li et al. 2014, OSDI; Ho et al. 2013, NIPS for stale synchronous
// parallel): rank 0 holds the parameters and the optimizer, ranks 1..W are workers that compute
// gradients on their own data, push them, and pull parameters back. Three consistency models:
//   bsp — bulk synchronous: the server waits for every worker's gradient of a step, applies their
//         average once, and answers everyone with the same new parameters (synchronous SGD: the
//         same steps as one process on the union of the workers' batches);
//   asp — asynchronous: the server applies each gradient the moment it arrives and answers that
//         worker at once; workers never wait for each other (gradients may be computed on stale
//         parameters, without bound);
//   ssp — stale synchronous with staleness s: like asp, but a worker that has pushed c gradients
//         is answered only once every worker has pushed at least c − s, so no worker runs more
//         than s steps ahead of the slowest.
// Messages are point-to-point: a push is [clock, gradient...] (clock −1: the worker is done), a
// reply is [server version, slowest clock, parameters...], all float64.
//
//   const ps = await ParameterServer.create(model, group, { mode: 'ssp', staleness: 2 });
//   if (ps.isServer) await ps.serve((params) => new optim.SGD(params, { lr: 0.1 }));
//   else { for (...) { ps.model.zeroGrad(); loss(...).backward(); await ps.pushPull(); } await ps.done(); }
import { TesseraError } from '../core/errors.js';
import type { AnyModule, Parameter } from '../nn/module.js';
import { assignValues } from '../nn/inplace.js';
import { tensor } from '../ops/creation.js';
import type { BaseOptions, Optimizer } from '../optim/optimizer.js';
import type { ProcessGroup } from './process-group.js';
import { broadcastTensors } from './tensor-sync.js';

export type ConsistencyModel = 'bsp' | 'asp' | 'ssp';

export interface ParameterServerOptions {
  mode: ConsistencyModel;
  /** For ssp: how many steps a worker may run ahead of the slowest one (0 = lock step). */
  staleness?: number;
}

/** What a worker learns with each pull. */
export interface PullInfo {
  /** Updates the server had applied when it answered. */
  serverVersion: number;
  /** This worker's clock (gradients pushed so far). */
  clock: number;
  /** The fewest gradients any worker had pushed when the server answered. */
  slowestClock: number;
}

const PUSH_TAG = 7001;
const REPLY_TAG = 7002;
const DONE = -1;

export class ParameterServer {
  private readonly params: Parameter[];
  private readonly size: number;
  private clock = 0;

  private constructor(readonly model: AnyModule, readonly group: ProcessGroup, readonly mode: ConsistencyModel, readonly staleness: number) {
    this.params = model.parameters().filter((p) => p.requiresGrad);
    this.size = this.params.reduce((n, p) => n + p.size, 0);
  }

  /** Every rank builds the same model structure; rank 0's initial parameters become everyone's. */
  static async create(model: AnyModule, group: ProcessGroup, options: ParameterServerOptions): Promise<ParameterServer> {
    if (group.size < 2) throw new TesseraError('ParameterServer: needs a server (rank 0) and at least one worker; the group has one rank.');
    const staleness = options.mode === 'ssp' ? options.staleness ?? 0 : options.mode === 'bsp' ? 0 : Infinity;
    if (options.mode !== 'bsp' && options.mode !== 'asp' && options.mode !== 'ssp') throw new TesseraError(`ParameterServer: mode must be bsp, asp or ssp, got '${String(options.mode)}'.`);
    if (!(staleness >= 0)) throw new TesseraError(`ParameterServer: staleness must be a non-negative integer, got ${String(options.staleness)}.`);
    await broadcastTensors(group, model.parameters(), 0, 'ParameterServer.create');
    return new ParameterServer(model, group, options.mode, staleness);
  }

  get isServer(): boolean { return this.group.rank === 0; }
  get workers(): number { return this.group.size - 1; }

  /**
   * Worker: sends this replica's gradients, waits for the server's answer (which consistency
   * model decides when), and loads the parameters it carries. Clears nothing: call zeroGrad.
   */
  async pushPull(): Promise<PullInfo> {
    this.assertWorker('pushPull');
    const push = new Float64Array(1 + this.size);
    push[0] = ++this.clock;
    let offset = 1;
    for (const p of this.params) {
      if (p.grad !== undefined) push.set(p.grad.data(), offset);
      offset += p.size;
    }
    await this.group.send(push, 0, { tag: PUSH_TAG });
    const reply = await this.group.recv(new Float64Array(2 + this.size), 0, { tag: REPLY_TAG });
    offset = 2;
    for (const p of this.params) {
      assignValues(p, reply.subarray(offset, offset + p.size), 'ParameterServer.pushPull');
      offset += p.size;
    }
    return { serverVersion: reply[0]!, clock: this.clock, slowestClock: reply[1]! };
  }

  /** Worker: tells the server this worker has no more gradients. */
  async done(): Promise<void> {
    this.assertWorker('done');
    const push = new Float64Array(1 + this.size);
    push[0] = DONE;
    await this.group.send(push, 0, { tag: PUSH_TAG });
  }

  /**
   * Server: applies the workers' gradients with the optimizer that `makeOptimizer` builds over
   * the server's parameters, until every worker has called done(). Returns the number of updates.
   */
  async serve(makeOptimizer: (params: Parameter[]) => Optimizer<BaseOptions>): Promise<number> {
    if (!this.isServer) throw new TesseraError('ParameterServer.serve: only rank 0 serves; workers call pushPull() and done().');
    const optimizer = makeOptimizer(this.params);
    const workers = Array.from({ length: this.workers }, (_, k) => k + 1);
    const clocks = new Map<number, number>(workers.map((w) => [w, 0]));
    const finished = new Set<number>();
    /** Workers waiting for an answer, with the clock they pushed. */
    const waiting = new Map<number, number>();
    /** bsp: the gradients of the current step, summed. */
    const pendingSum = new Float64Array(this.size);
    let pendingCount = 0;
    let version = 0;
    const receive = (w: number) => this.group.recv(new Float64Array(1 + this.size), w, { tag: PUSH_TAG }).wait().then((msg) => ({ w, msg }));
    const inbox = new Map(workers.map((w) => [w, receive(w)]));

    const slowest = (): number => Math.min(...[...clocks].filter(([w]) => !finished.has(w)).map(([, c]) => c), Infinity);
    const apply = (gradient: Float64Array, scale: number): void => {
      let offset = 0;
      for (const p of this.params) {
        const g = Array.from(gradient.subarray(offset, offset + p.size), (v) => v * scale);
        p.grad = tensor(g, { shape: [...p.shape], dtype: p.dtype, backend: p.storage.backend.name });
        offset += p.size;
      }
      optimizer.step();
      optimizer.zeroGrad();
      version++;
    };
    const answer = async (): Promise<void> => {
      const low = slowest();
      const sends: Promise<void>[] = [];
      for (const [w, c] of [...waiting]) {
        if (c - low > this.staleness) continue;
        waiting.delete(w);
        const reply = new Float64Array(2 + this.size);
        reply[0] = version;
        reply[1] = low === Infinity ? c : low;
        let offset = 2;
        for (const p of this.params) { reply.set(p.data(), offset); offset += p.size; }
        sends.push(this.group.send(reply, w, { tag: REPLY_TAG }).wait());
      }
      await Promise.all(sends);
    };

    while (inbox.size > 0) {
      const { w, msg } = await Promise.race(inbox.values());
      inbox.delete(w);
      if (msg[0] === DONE) {
        finished.add(w);
      } else {
        clocks.set(w, msg[0]!);
        waiting.set(w, msg[0]!);
        inbox.set(w, receive(w));
        if (this.mode === 'bsp') {
          for (let i = 0; i < this.size; i++) pendingSum[i] += msg[1 + i]!;
          pendingCount++;
        } else {
          apply(msg.subarray(1), 1);
        }
      }
      // bsp: the step is complete once every worker still running has pushed its gradient.
      if (this.mode === 'bsp' && pendingCount > 0 && pendingCount === this.workers - finished.size) {
        apply(pendingSum, 1 / pendingCount);
        pendingSum.fill(0);
        pendingCount = 0;
      }
      // bsp answers once the step's update is applied (nobody is waiting on a partial sum).
      if (this.mode !== 'bsp' || pendingCount === 0) await answer();
    }
    return version;
  }

  private assertWorker(op: string): void {
    if (this.isServer) throw new TesseraError(`ParameterServer.${op}: rank 0 is the server; call serve() there.`);
  }
}
