// What the wasm heap does when it fills (WasmHeapOptions.onPressure) in Node: run the garbage
// collector, and say so once when that cannot help.
//
// A tensor dropped without dispose() gives its block back from a FinalizationRegistry callback,
// and V8 runs those callbacks only between event-loop tasks. A synchronous loop that drops tensors
// (the forward activations of `for (...) { loss = f(model(x)); loss.backward(); opt.step(); }`)
// therefore grows the heap step after step however often the collector runs, until the loop
// yields or the heap's 2 GiB run out. backward() and the optimizers free their own gradients
// (autodiff/cotangent-owner.ts, Tensor._replaceGrad); what is left is the user's tensors. When the
// heap passes `warnBytes` without an event-loop turn since the previous alert, one warning names
// the two fixes.

export interface HeapPressureOptions {
  /** Runs the JavaScript garbage collector (node-gc.ts). */
  collect: () => void;
  /** Where the warning goes (default: process.emitWarning, or console.warn). */
  warn?: (message: string) => void;
  /** Bytes in use from which a heap that grew without an event-loop turn is reported. Default 1 GiB. */
  warnBytes?: number;
  /** Schedules a callback after the current task (default setTimeout 0, unref'd). */
  afterTurn?: (fn: () => void) => void;
}

export const HEAP_GROWTH_WARNING_CODE = 'TESSERA_WASM_HEAP_GROWTH';

function defaultWarn(message: string): void {
  const proc = (globalThis as { process?: { emitWarning?: (m: string, o: { code: string }) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(message, { code: HEAP_GROWTH_WARNING_CODE });
  else console.warn(message);
}

function defaultAfterTurn(fn: () => void): void {
  const timer = setTimeout(fn, 0) as unknown as { unref?: () => void };
  timer.unref?.(); // a pending check never keeps the process alive
}

/** The onPressure handler: collect, and warn once if the heap keeps growing inside one synchronous run. */
export function heapPressureHandler(options: HeapPressureOptions): (stats: { bytesInUse: number }) => void {
  const warn = options.warn ?? defaultWarn;
  const warnBytes = options.warnBytes ?? 2 ** 30;
  const afterTurn = options.afterTurn ?? defaultAfterTurn;
  let turned = true;
  let sinceBytes = 0;
  let warned = false;
  return (stats) => {
    options.collect();
    if (turned) {
      // The first alert of a synchronous run: note where it started and watch for the next turn.
      turned = false;
      sinceBytes = stats.bytesInUse;
      afterTurn(() => { turned = true; });
      return;
    }
    if (warned || stats.bytesInUse < warnBytes) return;
    warned = true;
    const mib = (b: number): string => `${Math.round(b / 2 ** 20)} MiB`;
    warn(`tessera (wasm): the heap grew from ${mib(sinceBytes)} to ${mib(stats.bytesInUse)} in use without the event loop turning. ` +
      'Tensors dropped without dispose() give their memory back only between event-loop tasks (their finalizers run there), ' +
      'so a synchronous loop keeps every step\'s dropped tensors until it ends. Wrap each step in ' +
      't.scope(() => { ... }) (or `using _ = t.memoryScope()`), dispose() what you no longer need, or ' +
      '`await new Promise((r) => setImmediate(r))` once per step.');
  };
}
