// The benchmark's quiet gate: when the parent lets a case be timed (bench/quiet-gate.ts), how a
// child's timing loop re-times a case whose cores slowed (bench/harness.ts timeRuns), and the
// stdin/stdout protocol between them. Probes are scripted; no timing is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { QuietGate, type QuietGateOptions } from '../../bench/quiet-gate.js';
import { HostProbe } from '../../bench/host-probe.js';
import { MAX_TIMING_ATTEMPTS, timeRuns, type CaseGate } from '../../bench/harness.js';
import { GATE_ENV, GATE_PREFIX, RESULT_PREFIX, type BenchRecord, type GateAnswer } from '../../bench/spec.js';

const OPTIONS: QuietGateOptions = { threshold: 0.85, maxWaitMs: 10_000, maxTotalWaitMs: 60_000, probeMs: 250, pauseMs: 750, calibrationProbes: 3 };

/** A gate whose probes return `readings` in order, on a simulated clock (a probe takes probeMs). */
function scriptedGate(readings: number[][], options = OPTIONS): { gate: QuietGate; probesLeft: () => number } {
  let clock = 0, next = 0;
  const measure = async (ms: number): Promise<number[]> => {
    clock += ms;
    if (next >= readings.length) throw new Error('scripted probe: out of readings');
    return readings[next++]!;
  };
  const gate = new QuietGate(measure, options, async (ms) => { clock += ms; }, () => clock);
  return { gate, probesLeft: () => readings.length - next };
}

test('calibration sets the reference to the best slowest-core rate seen', async () => {
  const { gate } = scriptedGate([[30, 44], [45, 46], [28, 29]]);
  await gate.calibrate();
  assert.equal(gate.referenceGflops, 45);
  assert.equal(gate.probes, 3);
});

test('waitForQuiet probes until every core reaches the threshold of the reference', async () => {
  const { gate, probesLeft } = scriptedGate([[45, 45], [45, 30], [28, 46], [44, 40], [99, 99]]);
  await gate.calibrate(); // 3 probes: reference 45
  const before = await gate.waitForQuiet();
  assert.equal(before.quiet, true);
  assert.equal(before.probes, 1);
  assert.deepEqual(before.reading.coresGflops, [44, 40]); // 40 / 45 = 0.89
  assert.equal(probesLeft(), 1);
});

test('waitForQuiet waits through slow readings, and gives up after maxWaitMs saying not quiet', async () => {
  const options = { ...OPTIONS, calibrationProbes: 1, maxWaitMs: 2500 };
  const slowThenQuiet = scriptedGate([[48, 48], [30, 30], [29, 47], [47, 46]], options);
  await slowThenQuiet.gate.calibrate();
  const waited = await slowThenQuiet.gate.waitForQuiet();
  assert.equal(waited.quiet, true);
  assert.equal(waited.probes, 3);
  assert.equal(waited.waitedMs, 3 * 250 + 2 * 750);
  assert.equal(slowThenQuiet.gate.totalWaitMs, waited.waitedMs);

  const neverQuiet = scriptedGate([[48, 48], [30, 30], [30, 30], [30, 30], [30, 30], [48, 48]], options);
  await neverQuiet.gate.calibrate();
  const gaveUp = await neverQuiet.gate.waitForQuiet();
  assert.equal(gaveUp.quiet, false);
  assert.equal(gaveUp.probes, 4); // after the third probe 2250 ms had passed, after the fourth 3250
  assert.equal(gaveUp.waitedMs, 3250);
  assert.equal(neverQuiet.probesLeft(), 1);
});

test('once the waits of a run reach maxTotalWaitMs, the gate stops waiting', async () => {
  const options = { ...OPTIONS, calibrationProbes: 1, maxWaitMs: 2000, maxTotalWaitMs: 3000 };
  const { gate } = scriptedGate([[48, 48], [30, 30], [30, 30], [30, 30], [30, 30], [30, 30], [30, 30], [30, 30]], options);
  await gate.calibrate();
  assert.equal((await gate.waitForQuiet()).probes, 3); // 2250 ms waited
  const second = await gate.waitForQuiet(); // 750 ms of patience left
  assert.equal(second.quiet, false);
  assert.equal(second.probes, 2); // 2250 + 1250 ms ≥ 3000
  const third = await gate.waitForQuiet();
  assert.equal(third.probes, 1);
  assert.equal(gate.outOfPatience, true);
  const after = await gate.check();
  assert.equal(after.quiet, false);
  assert.equal(after.retry, false); // no patience left to wait for a retry

});

test('a faster reading raises the reference, so it is quiet by definition', async () => {
  const { gate } = scriptedGate([[20, 20], [40, 41]], { ...OPTIONS, calibrationProbes: 1 });
  await gate.calibrate();
  const r = await gate.check();
  assert.equal(r.quiet, true);
  assert.equal(r.retry, false);
  assert.equal(r.referenceGflops, 40);
});

test('a prior holds the reference up until the cores reach it, and is dropped when a wait never does', async () => {
  const options = { ...OPTIONS, calibrationProbes: 2, maxWaitMs: 1000, priorGflops: 45 };
  const { gate } = scriptedGate([[25, 26], [24, 25], [26, 26], [26, 27], [25, 25], [43, 44]], options);
  await gate.calibrate();
  assert.equal(gate.referenceGflops, 45); // 25 is not taken for the quiet rate
  const gaveUp = await gate.waitForQuiet(); // 26 and 26: 0.58 of 45
  assert.equal(gaveUp.quiet, false);
  assert.equal(gate.priorDropped, true);
  assert.equal(gate.referenceGflops, 26);
  assert.equal((await gate.check()).quiet, true); // 25 / 26
  const faster = await gate.check();
  assert.equal(faster.quiet, true);
  assert.equal(gate.referenceGflops, 43);
});

function answer(quiet: boolean): GateAnswer {
  return { quiet, waitedMs: 0, probes: 1, reading: { atMs: 0, coresGflops: [quiet ? 45 : 20], fraction: quiet ? 1 : 0.44, quiet }, referenceGflops: 45, retry: !quiet };
}

test('timeRuns times a case again when the cores slowed before it finished, up to MAX_TIMING_ATTEMPTS', async () => {
  const timing = { warmup: 1, warmupMs: 0, minRuns: 2, maxRuns: 2, budgetMs: 1e9, caseLimitMs: 1e9 };
  const script = (afters: boolean[]): { gate: CaseGate; log: string[] } => {
    const log: string[] = [];
    let i = 0;
    return { log, gate: (phase) => { log.push(phase); return phase === 'before' ? answer(true) : answer(afters[i++]!); } };
  };
  let calls = 0;
  const once = script([false, true]);
  const t = await timeRuns(() => { calls++; }, timing, undefined, once.gate);
  assert.deepEqual(once.log, ['before', 'after', 'before', 'after']);
  assert.equal(calls, 1 + 2 * 2); // one warm-up, two timed runs per attempt
  assert.equal(t.quiet?.attempts, 2);
  assert.equal(t.quiet?.after.quiet, true);

  const never = script(Array(10).fill(false));
  const u = await timeRuns(() => {}, timing, undefined, never.gate);
  assert.equal(u.quiet?.attempts, MAX_TIMING_ATTEMPTS);
  assert.equal(u.quiet?.after.quiet, false);
  assert.equal(never.log.length, 2 * MAX_TIMING_ATTEMPTS);

  // A case cut to one run (its warm-up exceeded the case limit) is never timed twice.
  let clock = 0;
  const slow = script([false, false]);
  const v = await timeRuns(() => { clock += 10; }, { ...timing, caseLimitMs: 5 }, () => clock, slow.gate);
  assert.equal(v.runs, 1);
  assert.equal(v.quiet?.attempts, 1);
});

test('a child asks the gate on stdout and reads its answers on stdin (the protocol bench/run.ts speaks)', async () => {
  const fixture = fileURLToPath(new URL('./fixtures/gated-child.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { env: { ...process.env, [GATE_ENV]: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const phases: string[] = [];
  const afters = [false, true];
  let out = '', err = '', record: BenchRecord | undefined;
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith(GATE_PREFIX)) {
        const { phase } = JSON.parse(line.slice(GATE_PREFIX.length)) as { phase: string };
        phases.push(phase);
        child.stdin.write(`${JSON.stringify(phase === 'before' ? answer(true) : answer(afters.shift()!))}\n`);
      } else if (line.startsWith(RESULT_PREFIX)) record = JSON.parse(line.slice(RESULT_PREFIX.length)) as BenchRecord;
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  assert.deepEqual(phases, ['before', 'after', 'before', 'after']);
  assert.equal(record?.case, 'calls 5');
  assert.equal(record?.quiet?.attempts, 2);
});

test('the host probe measures every core at once', async () => {
  const probe = new HostProbe(2);
  try {
    const gflops = await probe.measure(20);
    assert.equal(gflops.length, 2);
    for (const g of gflops) assert.ok(g > 0 && Number.isFinite(g), `probe read ${g} GFLOP/s`);
  } finally {
    await probe.close();
  }
});
