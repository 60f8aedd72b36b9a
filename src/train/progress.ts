// Reporting a training run: a live progress bar on a terminal, plain lines in logs, JSON for machines.

/** What the loop tells the reporter after each step. */
export interface StepInfo {
  epoch: number;
  epochs: number;
  /** Batches done in this epoch, and per epoch. */
  batch: number;
  batches: number;
  /** Mean training loss of this epoch so far. */
  loss: number;
  samplesPerSec: number;
  /** Seconds left in this epoch at the current speed. */
  etaSeconds: number;
}

/** One epoch's summary (also the `--json` record). */
export interface EpochRecord {
  epoch: number;
  loss: number;
  /** Training accuracy over the epoch's batches (classifiers). */
  accuracy?: number;
  /** Held-out metrics measured at the end of the epoch. */
  testAccuracy?: number;
  valLoss?: number;
  samplesPerSec: number;
  seconds: number;
  lr: number;
}

export interface Reporter {
  step(info: StepInfo): void;
  epoch(record: EpochRecord): void;
  /** Free-form information (setup, results); suppressed in JSON mode unless `json` is given. */
  info(text: string, json?: Record<string, unknown>): void;
}

export interface ReporterOptions {
  json?: boolean;
  /** Where text goes (default process.stderr for bars, process.stdout for lines). */
  out?: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Override terminal detection. */
  tty?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function describeEpoch(r: EpochRecord, epochs: number): string {
  const parts = [`epoch ${r.epoch}/${epochs}`, `loss ${r.loss.toFixed(4)}`];
  if (r.accuracy !== undefined) parts.push(`train acc ${(100 * r.accuracy).toFixed(2)}%`);
  if (r.testAccuracy !== undefined) parts.push(`test acc ${(100 * r.testAccuracy).toFixed(2)}%`);
  if (r.valLoss !== undefined) parts.push(`val loss ${r.valLoss.toFixed(4)}`);
  parts.push(`${Math.round(r.samplesPerSec)} samples/s`, `${r.seconds.toFixed(1)}s`);
  return parts.join('  ');
}

/** A reporter for the given output: bar on a TTY, a line per epoch (and every ~10%) otherwise, or JSON. */
export function createReporter(epochs: number, options: ReporterOptions = {}): Reporter {
  const out = options.out ?? process.stdout;
  const tty = options.tty ?? (!options.json && out.isTTY === true);
  if (options.json) {
    return {
      step: () => undefined,
      epoch: (r) => void out.write(JSON.stringify(r) + '\n'),
      info: (_text, json) => { if (json !== undefined) out.write(JSON.stringify(json) + '\n'); },
    };
  }
  if (tty) {
    let lastDraw = 0;
    return {
      step(i) {
        const now = Date.now();
        if (now - lastDraw < 100 && i.batch < i.batches) return;
        lastDraw = now;
        const head = `epoch ${i.epoch}/${i.epochs} `;
        const tail = ` ${i.batch}/${i.batches}  loss ${i.loss.toFixed(4)}  ${Math.round(i.samplesPerSec)} samples/s  ETA ${formatDuration(i.etaSeconds)}`;
        // The bar takes what the terminal width leaves (so the line never wraps), between 5 and 24 cells.
        const cols = out.columns !== undefined && out.columns >= 40 ? out.columns : 120; // a pty may report 0 columns
        const width = Math.max(5, Math.min(24, cols - 1 - head.length - tail.length));
        const filled = Math.round((width * i.batch) / i.batches);
        const line = head + '█'.repeat(filled) + '░'.repeat(width - filled) + tail;
        out.write('\r' + line.slice(0, cols - 1) + '\x1b[K');
      },
      epoch(r) {
        out.write('\r\x1b[K' + describeEpoch(r, epochs) + '\n');
      },
      info(text) {
        out.write(text + '\n');
      },
    };
  }
  let lastTenth = -1;
  return {
    step(i) {
      const tenth = Math.floor((10 * i.batch) / i.batches);
      if (i.batch === 1) lastTenth = 0;
      if (tenth > lastTenth && tenth < 10) {
        lastTenth = tenth;
        out.write(`epoch ${i.epoch}/${i.epochs}  step ${i.batch}/${i.batches}  loss ${i.loss.toFixed(4)}  ${Math.round(i.samplesPerSec)} samples/s  ETA ${formatDuration(i.etaSeconds)}\n`);
      }
    },
    epoch(r) {
      out.write(describeEpoch(r, epochs) + '\n');
    },
    info(text) {
      out.write(text + '\n');
    },
  };
}
