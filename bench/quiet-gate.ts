// When may a benchmark case be timed? bench/run.ts asks this gate before each case's timed runs
// and again after them (bench/harness.ts's timeRuns, through the child's stdin and stdout).
//
// "Quiet" means every core delivers at least `threshold` of the best SIMD throughput seen on it in
// this run (host-probe.ts). Before a case, the gate probes until the cores are quiet, for at most
// `maxWaitMs`; after it, one probe says whether they still were, and if not the case is timed
// again (the harness allows a few attempts). The decision rests on the probe alone, never on the
// case's own times, so it cannot favour one library: every library's cases pass the same gate,
// and each record carries the readings it was timed between.

export interface ProbeReading {
  /** Milliseconds since the gate was made. */
  atMs: number;
  /** Micro-kernel GFLOP/s of each core, measured at once. */
  coresGflops: number[];
  /** The slowest core's rate over the reference. */
  fraction: number;
  quiet: boolean;
}

export interface GateResult {
  quiet: boolean;
  /** Time spent probing and waiting before this answer. */
  waitedMs: number;
  probes: number;
  reading: ProbeReading;
  /** The reference (best slowest-core GFLOP/s seen so far) the reading was judged against. */
  referenceGflops: number;
  /** After a case: time it again (not quiet, and the gate still has patience for another wait). */
  retry: boolean;
}

export interface QuietGateOptions {
  /** Quiet when the slowest core reaches this fraction of the reference. */
  threshold: number;
  /** Give up waiting (and time the case anyway, marked not quiet) after this long. */
  maxWaitMs: number;
  /** Once the waits of a run add up to this, the gate stops waiting (it still probes and records). */
  maxTotalWaitMs: number;
  /** Duration of one probe. */
  probeMs: number;
  /** Pause between probes while waiting. */
  pauseMs: number;
  /** Probes at the start of the run that set the first reference. */
  calibrationProbes: number;
  /**
   * What a core should deliver when the host lends all of it (bench/run.ts: 90% of the 128-bit
   * peak at the estimated clock; the micro-kernel reaches ~97%). Until a probe shows it, the
   * reference is this, so a run that starts while the host is busy does not take the slow rate
   * for the quiet one. Dropped (the reference becomes the best seen) if a wait gives up without
   * any core set reaching it: then the prior was wrong for this machine.
   */
  priorGflops?: number;
}

export const DEFAULT_GATE_OPTIONS: QuietGateOptions = { threshold: 0.9, maxWaitMs: 120_000, maxTotalWaitMs: 20 * 60_000, probeMs: 250, pauseMs: 750, calibrationProbes: 6 };

export class QuietGate {
  /** The best slowest-core rate seen in this run: the machine's quiet state as far as we know. */
  referenceGflops = 0;
  probes = 0;
  totalWaitMs = 0;
  /** Whether options.priorGflops was given up (never reached within maxWaitMs). */
  priorDropped = false;
  private bestSeen = 0;
  private readonly start: number;

  constructor(
    private readonly measure: (ms: number) => Promise<number[]>,
    readonly options: QuietGateOptions = DEFAULT_GATE_OPTIONS,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = now();
    this.referenceGflops = options.priorGflops ?? 0;
  }

  private async probe(): Promise<ProbeReading> {
    const coresGflops = await this.measure(this.options.probeMs);
    this.probes++;
    const slowest = Math.min(...coresGflops);
    this.bestSeen = Math.max(this.bestSeen, slowest);
    this.referenceGflops = Math.max(this.referenceGflops, slowest);
    const fraction = slowest / this.referenceGflops;
    return { atMs: this.now() - this.start, coresGflops, fraction, quiet: fraction >= this.options.threshold };
  }

  /** Sets the first reference from a few probes spread over a few seconds. */
  async calibrate(): Promise<void> {
    for (let i = 0; i < this.options.calibrationProbes; i++) {
      if (i > 0) await this.sleep(this.options.pauseMs);
      await this.probe();
    }
  }

  /** Probes until the cores are quiet or maxWaitMs has passed. */
  async waitForQuiet(): Promise<GateResult> {
    const t0 = this.now();
    let probes = 0;
    for (;;) {
      const reading = await this.probe();
      probes++;
      const waitedMs = this.now() - t0;
      const patienceLeft = Math.min(this.options.maxWaitMs - waitedMs, this.options.maxTotalWaitMs - this.totalWaitMs - waitedMs);
      if (reading.quiet || patienceLeft <= 0) {
        this.totalWaitMs += waitedMs;
        if (!reading.quiet && !this.priorDropped && this.options.priorGflops !== undefined
          && this.bestSeen < this.options.threshold * this.options.priorGflops) {
          this.priorDropped = true;
          this.referenceGflops = this.bestSeen;
        }
        return { quiet: reading.quiet, waitedMs, probes, reading, referenceGflops: this.referenceGflops, retry: false };
      }
      await this.sleep(this.options.pauseMs);
    }
  }

  /** Whether the run's waits have used up maxTotalWaitMs: then cases are timed as they come. */
  get outOfPatience(): boolean {
    return this.totalWaitMs >= this.options.maxTotalWaitMs;
  }

  /** One probe: were the cores still quiet when a case finished? If not, retry while patience lasts. */
  async check(): Promise<GateResult> {
    const t0 = this.now();
    const reading = await this.probe();
    return { quiet: reading.quiet, waitedMs: this.now() - t0, probes: 1, reading, referenceGflops: this.referenceGflops,
      retry: !reading.quiet && !this.outOfPatience };
  }
}
