// A discrete-event simulator of pipeline-parallel schedules. Each schedule is a rule for which
// operation a device runs next (a fixed per-device order, or a priority among ready operations);
// the simulator executes it on given per-stage forward/backward times and point-to-point costs, and
// measures what the closed forms only approximate: step time, bubble, in-flight activations and
// weight versions per stage. Sources per schedule in parallel-anchors.md §4.

export type ScheduleName =
  | 'gpipe' | '1f1b' | 'interleaved-1f1b' | 'chimera' | 'terapipe' | 'ampnet' | 'pipedream' | 'pipedream-2bw' | 'zb-h1';

export const scheduleNames: readonly ScheduleName[] = ['gpipe', '1f1b', 'interleaved-1f1b', 'chimera', 'terapipe', 'ampnet', 'pipedream', 'pipedream-2bw', 'zb-h1'];

export interface PipelineInput {
  schedule: ScheduleName;
  /** Pipeline devices (p). */
  stages: number;
  /** Micro-batches per step (m). */
  microBatches: number;
  /** Forward seconds of one micro-batch through each device's layers (one number = all equal). */
  forward: number | readonly number[];
  /** Backward seconds (input and weight gradients together) per device. */
  backward: number | readonly number[];
  /** Seconds of one activation/gradient transfer between two devices. */
  p2p?: number;
  /** Model chunks per device for interleaved 1F1B (v ≥ 2). */
  interleave?: number;
  /** Token slices per micro-batch for TeraPipe. */
  slices?: number;
  /**
   * Share of the backward time that is the weight gradient (W), for ZB-H1, in (0, 1): one for all
   * devices or one per device (measured B and W differ by stage: a first stage's B computes nothing).
   * Default 0.5.
   */
  weightGradFraction?: number | readonly number[];
  /** Steps simulated back to back for asynchronous schedules (AMPNet, PipeDream, 2BW). Default 4. */
  steps?: number;
  /**
   * Each device's passes in this order instead of the schedule's own (gpipe, 1f1b,
   * interleaved-1f1b, zb-h1 only): to time a given order, such as ZB-H1's equal-times order, under
   * other times. Entry d lists device d's passes, every one exactly once (as rankOrder gives them).
   */
  order?: readonly (readonly PassRef[])[];
}

/** One pass of one device: the kind, the micro-batch and the device's model chunk. */
export interface PassRef {
  kind: OpKind;
  microBatch: number;
  chunk: number;
}

export type OpKind = 'F' | 'B' | 'W';

export interface ScheduledOp {
  device: number;
  kind: OpKind;
  microBatch: number;
  /** Model chunk on this device (interleaving) or pipe (Chimera: 0 down, 1 up). */
  chunk: number;
  slice: number;
  step: number;
  start: number;
  end: number;
}

export interface PipelineResult {
  schedule: ScheduleName;
  stages: number;
  microBatches: number;
  ops: ScheduledOp[];
  /** Seconds per step (steady state for asynchronous schedules). */
  stepTime: number;
  /** Busy seconds per device per step. */
  busy: number[];
  /** Idle share of all device-time: 1 − Σbusy / (p · stepTime); GPipe's (p−1)/(m+p−1). */
  bubbleOfTotal: number;
  /** Idle time relative to the ideal (the busiest device's work): Megatron's (p−1)/m. */
  bubbleOfIdeal: number;
  /** Peak stored activations per device, in micro-batches of one full device stage. */
  peakActivations: number[];
  /** Copies of the stage weights each device holds at its peak (versions × replicas). */
  weightVersions: number[];
  asynchronous: boolean;
}

interface Op {
  id: number;
  device: number;
  kind: OpKind;
  unit: number; // index into units
  vstage: number; // virtual stage along the unit's path
  duration: number;
  deps: { op: number; comm: boolean }[];
  dependents: number[];
  remainingDeps: number;
  readyAt: number;
  start: number;
  end: number;
  /** activation weight this op adds (F) or frees (B/W) */
  act: number;
}

interface Unit { pipe: number; microBatch: number; slice: number; step: number }

function perStage(x: number | readonly number[], p: number, what: string): number[] {
  const arr = typeof x === 'number' ? new Array<number>(p).fill(x) : [...x];
  if (arr.length !== p) throw new Error(`pipeline: ${what} has ${arr.length} entries but there are ${p} stages; give one per stage or a single number.`);
  if (arr.some((t) => !(t >= 0))) throw new Error(`pipeline: ${what} times must be >= 0, got ${arr.join(', ')}.`);
  return arr;
}

function requireInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`pipeline: ${name} must be an integer >= ${min}, got ${v}.`);
}

export function simulatePipeline(input: PipelineInput): PipelineResult {
  const p = input.stages, m = input.microBatches, sched = input.schedule;
  requireInt('stages', p, 1);
  requireInt('microBatches', m, 1);
  if (!scheduleNames.includes(sched)) throw new Error(`pipeline: unknown schedule '${String(sched)}'. Known: ${scheduleNames.join(', ')}.`);
  const fwd = perStage(input.forward, p, 'forward');
  const bwd = perStage(input.backward, p, 'backward');
  const p2p = input.p2p ?? 0;
  const v = sched === 'interleaved-1f1b' ? (input.interleave ?? 2) : 1;
  const k = sched === 'terapipe' ? (input.slices ?? 4) : 1;
  const wfs = typeof input.weightGradFraction === 'object' ? [...input.weightGradFraction] : new Array<number>(p).fill(input.weightGradFraction ?? 0.5);
  const asynchronous = sched === 'ampnet' || sched === 'pipedream' || sched === 'pipedream-2bw';
  const steps = asynchronous ? (input.steps ?? 4) : 1;
  requireInt('interleave', v, 1);
  requireInt('slices', k, 1);
  requireInt('steps', steps, 2 - (asynchronous ? 0 : 1));
  if (sched === 'interleaved-1f1b') {
    if (v < 2) throw new Error(`pipeline: interleaved-1f1b needs interleave >= 2 chunks per device, got ${v}; use 1f1b for one chunk.`);
    if (m % p !== 0) throw new Error(`pipeline: interleaved-1f1b needs micro-batches (${m}) to be a multiple of stages (${p}) (Megatron-LM#750); use ${Math.ceil(m / p) * p}.`);
  }
  if (sched === 'chimera' && (m % 2 !== 0 || p % 2 !== 0)) {
    throw new Error(`pipeline: chimera splits micro-batches between two pipelines and pairs stages; needs even micro-batches and stages, got m=${m}, p=${p}.`);
  }
  if (wfs.length !== p) throw new Error(`pipeline: weightGradFraction has ${wfs.length} entries but there are ${p} stages; give one per stage or a single number.`);
  if (!wfs.every((wf) => wf > 0 && wf < 1)) throw new Error(`pipeline: weightGradFraction must be in (0, 1), got ${wfs.join(', ')}.`);
  if (input.order !== undefined && (k > 1 || asynchronous || sched === 'chimera')) {
    throw new Error(`pipeline: a given order runs only with gpipe, 1f1b, interleaved-1f1b or zb-h1, not ${sched}.`);
  }

  // ---- units of work and their paths through the virtual stages ----
  const S = p * v; // virtual stages per path
  const units: Unit[] = [];
  for (let st = 0; st < steps; st++) {
    for (let mb = 0; mb < m; mb++) {
      for (let sl = 0; sl < k; sl++) units.push({ pipe: sched === 'chimera' ? mb % 2 : 0, microBatch: mb, slice: sl, step: st });
    }
  }
  const deviceOf = (u: Unit, vs: number): number => (sched === 'chimera' && u.pipe === 1 ? p - 1 - vs : vs % p);
  const chunkOf = (u: Unit, vs: number): number => (sched === 'chimera' ? u.pipe : Math.floor(vs / p));
  const splitW = sched === 'zb-h1';

  const ops: Op[] = [];
  const fId: number[][] = [], bId: number[][] = [], wId: number[][] = [];
  const add = (device: number, kind: OpKind, unit: number, vstage: number, duration: number, act: number): number => {
    const id = ops.length;
    ops.push({ id, device, kind, unit, vstage, duration, deps: [], dependents: [], remainingDeps: 0, readyAt: 0, start: NaN, end: NaN, act });
    return id;
  };
  units.forEach((u, ui) => {
    fId.push([]); bId.push([]); wId.push([]);
    for (let vs = 0; vs < S; vs++) {
      const d = deviceOf(u, vs);
      const share = 1 / (v * k);
      fId[ui]!.push(add(d, 'F', ui, vs, fwd[d]! * share, share));
      const bt = bwd[d]! * share;
      bId[ui]!.push(add(d, 'B', ui, vs, splitW ? bt * (1 - wfs[d]!) : bt, share));
      wId[ui]!.push(splitW ? add(d, 'W', ui, vs, bt * wfs[d]!, share) : -1);
    }
  });
  const dep = (op: number, on: number): void => {
    const a = ops[op]!, b = ops[on]!;
    a.deps.push({ op: on, comm: a.device !== b.device });
    b.dependents.push(op);
  };
  units.forEach((u, ui) => {
    for (let vs = 0; vs < S; vs++) {
      if (vs > 0) dep(fId[ui]![vs]!, fId[ui]![vs - 1]!);
      if (vs === S - 1) dep(bId[ui]![vs]!, fId[ui]![vs]!);
      else dep(bId[ui]![vs]!, bId[ui]![vs + 1]!);
      if (splitW) dep(wId[ui]![vs]!, bId[ui]![vs]!);
      // TeraPipe: a token slice attends to the earlier slices of its sequence, so its forward waits
      // for theirs on the same stage and its backward for the later slices' backward.
      if (u.slice > 0) dep(fId[ui]![vs]!, fId[ui - 1]![vs]!);
      if (u.slice < k - 1) dep(bId[ui]![vs]!, bId[ui + 1]![vs]!);
    }
  });
  for (const o of ops) o.remainingDeps = o.deps.length;

  // ---- per-device policy: a fixed order, or a priority among ready ops ----
  const order: number[][] | undefined = fixedOrder();
  function fixedOrder(): number[][] | undefined {
    if (input.order !== undefined) return givenOrder(input.order);
    const lists: number[][] = Array.from({ length: p }, () => []);
    const unitIndex = (st: number, mb: number, sl: number): number => (st * m + mb) * k + sl;
    if (sched === 'gpipe' || sched === 'terapipe') {
      for (let d = 0; d < p; d++) {
        for (let mb = 0; mb < m; mb++) for (let sl = 0; sl < k; sl++) lists[d]!.push(fId[unitIndex(0, mb, sl)]![d]!);
        for (let mb = 0; mb < m; mb++) for (let sl = k - 1; sl >= 0; sl--) lists[d]!.push(bId[unitIndex(0, mb, sl)]![d]!);
      }
      return lists;
    }
    if (sched === '1f1b' || sched === 'pipedream' || sched === 'pipedream-2bw') {
      // PipeDream-Flush (1F1B): p−d−1 warm-up forwards, then one forward one backward; PipeDream
      // and 2BW run the same order over a continuous stream, without the flush between steps.
      const total = m * steps;
      for (let d = 0; d < p; d++) {
        const warm = Math.min(p - d - 1, total);
        let f = 0, b = 0;
        const L = lists[d]!;
        for (; f < warm; f++) L.push(fId[f]![d]!);
        while (f < total) { L.push(fId[f++]![d]!); L.push(bId[b++]![d]!); }
        while (b < total) L.push(bId[b++]![d]!);
      }
      return lists;
    }
    if (sched === 'interleaved-1f1b') {
      // Megatron-LM's interleaved schedule (schedules.py): forward k runs chunk ⌊(k mod pv)/p⌋ of
      // micro-batch ⌊k/pv⌋·p + k mod p; backwards visit chunks in reverse; warm-up
      // (p − d − 1)·2 + (v − 1)·p forwards.
      const total = m * v;
      const mbOf = (i: number): number => Math.floor(i / (p * v)) * p + (i % p);
      const fChunk = (i: number): number => Math.floor((i % (p * v)) / p);
      for (let d = 0; d < p; d++) {
        const L = lists[d]!;
        const warm = Math.min((p - d - 1) * 2 + (v - 1) * p, total);
        const F = (i: number): number => fId[mbOf(i)]![fChunk(i) * p + d]!;
        const B = (i: number): number => bId[mbOf(i)]![(v - 1 - fChunk(i)) * p + d]!;
        let f = 0, b = 0;
        for (; f < warm; f++) L.push(F(f));
        while (f < total) { L.push(F(f++)); L.push(B(b++)); }
        while (b < total) L.push(B(b++));
      }
      return lists;
    }
    return undefined;
  }
  function givenOrder(given: readonly (readonly PassRef[])[]): number[][] {
    if (given.length !== p) throw new Error(`pipeline: order has ${given.length} device lists but there are ${p} stages; give one per device.`);
    const kinds: OpKind[] = splitW ? ['F', 'B', 'W'] : ['F', 'B'];
    return given.map((passes, d) => {
      const seen = new Set<number>();
      const ids = passes.map((x, j) => {
        const table = x.kind === 'F' ? fId : x.kind === 'B' ? bId : splitW ? wId : undefined;
        const id = Number.isInteger(x.microBatch) && Number.isInteger(x.chunk) && x.chunk >= 0 && x.chunk < v ? table?.[x.microBatch]?.[x.chunk * p + d] : undefined;
        if (id === undefined || seen.has(id)) {
          throw new Error(`pipeline: order[${d}][${j}] (${x.kind} of micro-batch ${x.microBatch}, chunk ${x.chunk}) is ${id === undefined ? 'not a pass of' : 'repeated on'} device ${d} (${sched}: ${kinds.join(', ')} passes, micro-batches 0..${m - 1}, chunks 0..${v - 1}).`);
        }
        seen.add(id);
        return id;
      });
      if (ids.length !== m * v * kinds.length) throw new Error(`pipeline: order[${d}] has ${ids.length} passes; device ${d} runs ${m * v * kinds.length}.`);
      return ids;
    });
  }
  // Priority schedules (lower is better) and their in-flight caps.
  const cap = (d: number, op: Op): number => {
    if (sched === 'ampnet') return Infinity;
    if (sched === 'chimera') {
      const u = units[op.unit]!;
      const stageInPipe = u.pipe === 0 ? d : p - 1 - d;
      return p - stageInPipe; // the 1F1B rule inside each direction
    }
    return p - d; // zb-h1 keeps 1F1B's activation memory
  };
  // ZB-H1 (Qi et al. 2024, arXiv:2401.10241 §3): weight gradients fill bubbles, but a stage may
  // defer at most p−1−d of them, the number of cool-down bubbles it has in 1F1B; beyond that a W
  // runs before the next F, which keeps memory near 1F1B's.
  const pendingW = new Array<number>(p).fill(0);
  const priority = (op: Op): number => {
    const u = units[op.unit]!;
    const age = (u.step * m + u.microBatch) * k + u.slice;
    const urgentW = op.kind === 'W' && pendingW[op.device]! > p - 1 - op.device;
    const kindRank = op.kind === 'B' ? 0 : urgentW ? 0.5 : op.kind === 'F' ? 1 : 2;
    return kindRank * 1e9 + age;
  };

  // ---- the event loop ----
  const free = new Array<number>(p).fill(0);
  const head = new Array<number>(p).fill(0);
  const ready: Set<number>[] = Array.from({ length: p }, () => new Set<number>());
  const inFlight: number[][] = Array.from({ length: p }, () => [0, 0]); // per pipe/chunk-group count (units)
  const act = new Array<number>(p).fill(0);
  const peakAct = new Array<number>(p).fill(0);
  for (const o of ops) if (o.remainingDeps === 0) ready[o.device]!.add(o.id);
  let done = 0;
  const releaseOp = (o: Op): boolean => (splitW ? o.kind === 'W' : o.kind === 'B');
  while (done < ops.length) {
    let bestDevice = -1, bestTime = Infinity, bestOp = -1;
    for (let d = 0; d < p; d++) {
      let chosen = -1, chosenReady = Infinity;
      if (order !== undefined) {
        const id = order[d]![head[d]!];
        if (id !== undefined && ready[d]!.has(id)) { chosen = id; chosenReady = ops[id]!.readyAt; }
      } else {
        // Among ops ready by the time the device could start, the best priority; if none, the
        // earliest ready one.
        let earliest = Infinity;
        for (const id of ready[d]!) {
          const o = ops[id]!;
          if (o.kind === 'F' && inFlight[d]![chimeraPipe(o)]! >= cap(d, o)) continue;
          earliest = Math.min(earliest, o.readyAt);
        }
        if (earliest < Infinity) {
          const t = Math.max(free[d]!, earliest);
          let bestP = Infinity;
          for (const id of ready[d]!) {
            const o = ops[id]!;
            if (o.readyAt > t) continue;
            if (o.kind === 'F' && inFlight[d]![chimeraPipe(o)]! >= cap(d, o)) continue;
            const pr = priority(o);
            if (pr < bestP) { bestP = pr; chosen = id; chosenReady = o.readyAt; }
          }
        }
      }
      if (chosen < 0) continue;
      const t = Math.max(free[d]!, chosenReady);
      if (t < bestTime) { bestTime = t; bestDevice = d; bestOp = chosen; }
    }
    if (bestDevice < 0) {
      if (input.order !== undefined) throw new Error(`pipeline: the given order deadlocks: ${ops.length - done} passes are left and every device's next pass waits on a pass after another device's next one.`);
      throw new Error(`pipeline: schedule '${sched}' deadlocked with ${ops.length - done} operations left (this is a bug in the schedule's order).`);
    }
    const o = ops[bestOp]!;
    o.start = bestTime;
    o.end = bestTime + o.duration;
    free[bestDevice] = o.end;
    ready[bestDevice]!.delete(bestOp);
    if (order !== undefined) head[bestDevice]!++;
    if (o.kind === 'F') { inFlight[bestDevice]![chimeraPipe(o)]!++; act[bestDevice]! += o.act; peakAct[bestDevice] = Math.max(peakAct[bestDevice]!, act[bestDevice]!); }
    // The in-flight cap counts micro-batches whose input gradient is not done; the memory they
    // hold is freed only when the weight gradient (which needs the stored inputs) is done.
    if (o.kind === 'B') { inFlight[bestDevice]![chimeraPipe(o)]!--; if (splitW) pendingW[bestDevice]!++; }
    if (o.kind === 'W') pendingW[bestDevice]!--;
    if (releaseOp(o)) act[bestDevice]! -= o.act;
    done++;
    for (const nid of o.dependents) {
      const n = ops[nid]!;
      const comm = n.device !== o.device ? p2p : 0;
      n.readyAt = Math.max(n.readyAt, o.end + comm);
      if (--n.remainingDeps === 0) ready[n.device]!.add(nid);
    }
  }
  function chimeraPipe(o: Op): number { return sched === 'chimera' ? units[o.unit]!.pipe : 0; }

  // ---- measurements ----
  const scheduled: ScheduledOp[] = ops.map((o) => {
    const u = units[o.unit]!;
    return { device: o.device, kind: o.kind, microBatch: u.microBatch, chunk: chunkOf(u, o.vstage), slice: u.slice, step: u.step, start: o.start, end: o.end };
  });
  let stepTime: number;
  if (asynchronous) {
    // Steady state: the time between the ends of consecutive steps after the first.
    const endOf = (st: number): number => Math.max(...scheduled.filter((x) => x.step === st).map((x) => x.end));
    stepTime = (endOf(steps - 1) - endOf(0)) / (steps - 1);
  } else {
    stepTime = Math.max(...scheduled.map((x) => x.end));
  }
  const busy = new Array<number>(p).fill(0);
  for (const o of ops) busy[o.device]! += o.duration / steps;
  const totalBusy = busy.reduce((a, b) => a + b, 0);
  const ideal = Math.max(...busy);
  const weightVersions = countWeightVersions();
  function countWeightVersions(): number[] {
    if (sched === 'chimera') return new Array<number>(p).fill(2);
    if (sched !== 'pipedream' && sched !== 'pipedream-2bw') return new Array<number>(p).fill(1);
    // Replay each device's ops in time order: a forward pins the current version until its
    // backward; PipeDream updates after every backward, 2BW after every m backwards.
    const out: number[] = [];
    for (let d = 0; d < p; d++) {
      const mine = scheduled.filter((x) => x.device === d).sort((a, b) => a.start - b.start);
      let version = 0, backwards = 0, peak = 1;
      const pinned = new Map<string, number>();
      for (const x of mine) {
        const key = `${x.step}:${x.microBatch}`;
        if (x.kind === 'F') pinned.set(key, version);
        else {
          pinned.delete(key);
          backwards++;
          if (sched === 'pipedream' || backwards % m === 0) version++;
        }
        const versions = new Set<number>([version, ...pinned.values()]);
        peak = Math.max(peak, versions.size);
      }
      out.push(peak);
    }
    return out;
  }
  return {
    schedule: sched, stages: p, microBatches: m, ops: scheduled, stepTime, busy,
    bubbleOfTotal: 1 - totalBusy / (p * stepTime),
    bubbleOfIdeal: (stepTime - ideal) / ideal,
    peakActivations: peakAct,
    weightVersions,
    asynchronous,
  };
}

/** Closed forms for equal stages (Huang et al. 2019 §2.3; Narayanan et al. 2021 §2.2). */
export function closedFormBubble(schedule: 'gpipe' | '1f1b' | 'interleaved-1f1b', p: number, m: number, v = 1): { ofTotal: number; ofIdeal: number } {
  const ofIdeal = (schedule === 'interleaved-1f1b' ? 1 / v : 1) * (p - 1) / m;
  return { ofIdeal, ofTotal: ofIdeal / (1 + ofIdeal) };
}

/**
 * Device `device`'s passes in the order a simulation ran them ({ kind, microBatch, chunk }, by
 * start time): the `order` option of the runtime's PipelineParallel, so a run can follow a
 * simulation with measured times.
 */
export function rankOrder(result: PipelineResult, device: number): PassRef[] {
  return result.ops.filter((o) => o.device === device).sort((a, b) => a.start - b.start)
    .map((o) => ({ kind: o.kind, microBatch: o.microBatch, chunk: o.chunk }));
}
