// Node adapter: a way to run JavaScript's garbage collector on demand, for the heap's pressure
// alerts (memory.ts). Tensors that are dropped without dispose() give their wasm blocks back
// through a FinalizationRegistry, but V8 only collects when its own (small) JS heap fills up;
// the wasm heap can grow by gigabytes before that happens.
//
// Node exposes `gc` only with --expose-gc; setting that flag at run time applies to contexts
// created afterwards, so the function is taken from a fresh vm context. Returns undefined outside
// Node (browsers have no equivalent: there, dispose() or scopes are the way).

export function nodeGarbageCollector(): (() => void) | undefined {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (proc?.versions?.node === undefined || typeof proc.getBuiltinModule !== 'function') return undefined;
  try {
    const existing = (globalThis as { gc?: unknown }).gc;
    if (typeof existing === 'function') return existing as () => void;
    proc.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    const gc = proc.getBuiltinModule('node:vm').runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
