// autocast: mixed-precision regions, like torch.autocast.
//
// Inside a region, ops on the 'lower' list of autocast-policy.ts run in the region's dtype (float16
// or bfloat16) and ops on the 'float32' list in float32; the casts are ordinary `cast` ops, made in
// ops/dispatch.ts `bind` (the one path of eager code, tracing and backward) through a hook that is
// undefined outside a region (one check per op when autocast is off).
//
// Autodiff: a cast is differentiable (its vjp casts the cotangent back to the input's dtype), so
// float32 parameters get float32 gradients. backward() runs its vjp rules with autocast suspended:
// each rule computes in the dtypes its forward op recorded, whether backward is called inside the
// region or after it (call it after, as in PyTorch).
//
// The weight cache: a leaf that requires grad (a parameter) is cast once per dtype per region and
// the cast reused by every op that needs it (PyTorch's autocast weight cache), so a weight used by
// several products is cast, and its gradient cast back, once. The cache is dropped when the
// outermost region exits. An entry is used only under the grad mode and the tracer it was made
// under (a cast made under noGrad carries no tape; a cast made outside a trace would become a frozen
// constant of the traced graph), and only while its tape is intact. Like PyTorch's, it does not see
// a parameter changed in place inside the region: step the optimizer after the region.
//
// jit: a traced function records the casts as graph nodes. jit's cache key includes the autocast
// state (the region's dtype), so a function traced under autocast replays only under the same state
// and a change retraces; replays run the graph as recorded (no second cast).
//
// Regions cover the synchronous part of fn (like grad mode): an `await` inside fn leaves the region.
import { isFloating, type DType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { isGradEnabled } from '../autodiff/mode.js';
import { cast } from '../ops/elementwise.js';
import { innermostDispatchObserver, setAutocastHook, type AutocastHook } from '../ops/dispatch.js';
import { AUTOCAST_RULES, type AutocastPolicy } from './autocast-policy.js';

/** The dtypes a region may compute in. */
export type AutocastDType = 'float16' | 'bfloat16';

export interface AutocastOptions {
  /** The lower-precision dtype (default 'bfloat16', the CPU default of torch.autocast). */
  dtype?: AutocastDType;
  /** false: a region in which autocast is off (e.g. a float32 island inside an autocast region). Default true. */
  enabled?: boolean;
  /** Cache the casts of parameters for the region (default true). */
  cacheEnabled?: boolean;
}

interface RegionState {
  enabled: boolean;
  dtype: AutocastDType;
  cacheEnabled: boolean;
  hook: AutocastHook | undefined;
}

const policies = new Map<string, AutocastPolicy>(Object.entries(AUTOCAST_RULES).map(([op, r]) => [op, r.policy]));

interface CachedCast {
  value: Tensor;
  gradEnabled: boolean;
  observer: unknown;
}
/** Casts of parameters, by source tensor then dtype; dropped when the outermost region exits. */
const weightCache = new Map<Tensor, Map<DType, CachedCast>>();
const regions: RegionState[] = [];

function cachedCast(x: Tensor, dtype: DType): Tensor {
  let byDtype = weightCache.get(x);
  const gradEnabled = isGradEnabled();
  const observer = innermostDispatchObserver();
  const hit = byDtype?.get(dtype);
  if (hit !== undefined && hit.gradEnabled === gradEnabled && hit.observer === observer && !hit.value.isDisposed &&
      !(hit.value.gradNode !== undefined && hit.value.gradNode.freed)) {
    return hit.value;
  }
  const value = cast(x, dtype);
  if (byDtype === undefined) weightCache.set(x, (byDtype = new Map()));
  byDtype.set(dtype, { value, gradEnabled, observer });
  return value;
}

function makeHook(dtype: AutocastDType, cacheEnabled: boolean): AutocastHook {
  const castOne = (x: Tensor, to: DType): Tensor =>
    cacheEnabled && x.isLeaf && x.requiresGrad ? cachedCast(x, to) : cast(x, to);
  return {
    key: `autocast:${dtype}`,
    castInputs(op: string, inputs: readonly Tensor[]): readonly Tensor[] {
      const policy = policies.get(op);
      if (policy === undefined) return inputs;
      // Ops with a float64 input are not eligible (as in PyTorch): they run as they are.
      for (const x of inputs) if (x.dtype === 'float64') return inputs;
      let out: Tensor[] | undefined;
      for (let i = 0; i < inputs.length; i++) {
        const x = inputs[i]!;
        if (!isFloating(x.dtype)) continue;
        const to: DType = policy === 'lower' ? dtype : 'float32';
        if (x.dtype === to || (policy === 'float32' && x.dtype === 'float32')) continue;
        out ??= [...inputs];
        out[i] = castOne(x, to);
      }
      return out ?? inputs;
    },
  };
}

function checkOptions(opts: AutocastOptions): RegionState {
  const dtype = opts.dtype ?? 'bfloat16';
  if (dtype !== 'float16' && dtype !== 'bfloat16') {
    throw new TesseraError(`autocast: dtype must be 'float16' or 'bfloat16', got ${JSON.stringify(dtype)}; ` +
      "autocast lowers matrix products to a half-width format (float32 is what runs without autocast).");
  }
  const enabled = opts.enabled ?? true;
  const cacheEnabled = opts.cacheEnabled ?? true;
  return { enabled, dtype, cacheEnabled, hook: enabled ? makeHook(dtype, cacheEnabled) : undefined };
}

/** A region entered with enterAutocast; exit() (or `using`) leaves it. */
export interface AutocastRegion {
  readonly dtype: AutocastDType;
  readonly enabled: boolean;
  exit(): void;
  [Symbol.dispose](): void;
}

/**
 * Enters an autocast region until the returned handle's exit() (or the end of a `using` block):
 * `using _ = enterAutocast({ dtype: 'bfloat16' });`. Regions nest; exit them innermost first.
 */
export function enterAutocast(opts: AutocastOptions = {}): AutocastRegion {
  const state = checkOptions(opts);
  const previousHook = setAutocastHook(state.hook);
  regions.push(state);
  let open = true;
  const exit = (): void => {
    if (!open) return;
    if (regions[regions.length - 1] !== state) {
      throw new TesseraError('autocast: regions must be exited innermost first; an inner region entered after this one is still open.');
    }
    open = false;
    regions.pop();
    setAutocastHook(previousHook);
    if (regions.length === 0) weightCache.clear();
  };
  return { dtype: state.dtype, enabled: state.enabled, exit, [Symbol.dispose]: exit };
}

/**
 * Runs fn in an autocast region (torch.autocast as a function): matrix products in `dtype`,
 * reductions, exponentials, normalizations and losses in float32 (autocast-policy.ts). Returns what
 * fn returns. Run backward() and the optimizer after the region.
 */
export function autocast<T>(opts: AutocastOptions, fn: () => T): T {
  const region = enterAutocast(opts);
  try {
    return fn();
  } finally {
    region.exit();
  }
}

/** Whether ops are being autocast now (torch.is_autocast_enabled()). */
export function isAutocastEnabled(): boolean {
  const top = regions[regions.length - 1];
  return top !== undefined && top.enabled;
}

/** The dtype of the innermost enabled region, or undefined outside autocast. */
export function autocastDType(): AutocastDType | undefined {
  const top = regions[regions.length - 1];
  return top !== undefined && top.enabled ? top.dtype : undefined;
}

/** Number of parameter casts cached in the current regions (for tests and diagnostics). */
export function autocastCacheSize(): number {
  let n = 0;
  for (const m of weightCache.values()) n += m.size;
  return n;
}
