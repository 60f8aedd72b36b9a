// Which algorithm computes a convolution (forward) or its weight gradient: im2col + GEMM (the
// composite of primitives every backend runs) or the direct kernels (the convDirect and
// convWeightGrad primitives). On the wasm backend, for float32 with 1-2 spatial axes, the choice is
// measured once per distinct geometry, like an autotuner: both paths run on scratch tensors of that
// geometry through the backend's kernels (not through dispatch, so no tape, tracer or observer sees
// them), alternating, best of at least three after a warm-up of at least 60 ms that compiles the
// generated modules and lets V8 optimise them; the faster is cached. Everything else (other backends and dtypes, 3-D) keeps im2col + GEMM.
//
// Why measure rather than a fixed rule: the direct kernel does C_in/g·K multiply-adds per output
// from registers, so it wins when the GEMM depth K = C_in/g·kh·kw is small and the GEMM (plus the
// patch matrix it reads, and the bias add over its permuted result) cannot get up to speed, and
// loses when K is deep enough for the GEMM's register tiles. Measured with `timings` below (bench/conv-algorithms.ts) on the
// bench CNN (batch 64, 28x28, 3x3 pad 1; TESSERA_THREADS=1, 2 shared cores at load ~6, two runs):
//   conv1 1→32  (K = 9):   forward   direct 2.8-2.9 ms, im2col + GEMM + bias 5.7-7.7 ms;
//                          weight gradient direct 2.5 ms, im2col + copy + GEMM 5.0-6.7 ms;
//   conv2 32→64 (K = 288): forward   direct 59-65 ms, im2col + GEMM + bias 32-36 ms;
//                          weight gradient direct 68-71 ms, im2col + copy + GEMM 22-29 ms.
// A single run of a few ms can be hit by a burst of load (one run here had conv1's weight
// gradient at 10.2 vs 9.3 ms), hence alternating runs and the best of at least three.
//
// setConvAlgorithm forces one path everywhere (tests, benchmarks); the forced direct path runs on
// every backend (the cpu reference kernels serve any dtype and 1-3 spatial axes).
import type { Backend, KernelInput, OutputInfo, Storage } from '../../backend/backend.js';
import type { DType } from '../../core/dtype.js';
import { sizeOf } from '../../core/shape.js';
import type { PatchAttrs, PrimitiveName } from '../primitives.js';
import { patchMatrixShape, sweepWindows } from '../patch-shape.js';

export type ConvAlgorithm = 'direct' | 'im2col';
/** The forward convolution, or the gradient of its weight. */
export type ConvPass = 'forward' | 'weightGrad';

/** One convolution as the chooser sees it. */
export interface ConvProblem {
  backend: Backend;
  dtype: DType;
  /** [N, C_in, *spatial] */
  inputShape: readonly number[];
  outChannels: number;
  bias: boolean;
  attrs: PatchAttrs;
}

let forced: ConvAlgorithm | undefined;
const choices = new Map<string, ConvAlgorithm>();

/**
 * Forces every convolution (forward and weight gradient, on every backend) onto one algorithm, or
 * back to the per-shape choice with 'auto'. Returns the previous setting.
 */
export function setConvAlgorithm(algorithm: ConvAlgorithm | 'auto'): ConvAlgorithm | 'auto' {
  if (algorithm !== 'auto' && algorithm !== 'direct' && algorithm !== 'im2col') {
    throw new Error(`setConvAlgorithm: '${String(algorithm)}' is not an algorithm; use 'direct', 'im2col' or 'auto'.`);
  }
  const previous = forced ?? 'auto';
  forced = algorithm === 'auto' ? undefined : algorithm;
  return previous;
}

/** The measured choices so far, by "<backend> <pass> <geometry>". */
export function convAlgorithmChoices(): ReadonlyMap<string, ConvAlgorithm> {
  return choices;
}

/** Forgets the measured choices (the next convolution of each geometry measures again). */
export function clearConvAlgorithmChoices(): void {
  choices.clear();
}

/**
 * Whether the im2col path of this convolution builds its patch matrix channels-last: the input
 * copied to [N, *spatial, C] and unfolded with its last spatial axis and the channels merged into
 * one axis of W·C (channelsLastGeometry), so that each patch row is K/KW runs of KW·C contiguous
 * floats, K ordered (*k, c), instead of C·K/KW runs of KW; the weight is permuted to match.
 * With the wasm window kernels this makes im2col and col2im of the bench CNN's conv2 (32
 * channels, 3x3) about 2 ms faster each on one thread, for one small transposing copy of the input.
 * Needs dilation 1 along the last spatial axis (a window's taps along the merged axis are then
 * one run), one group and enough channels to make the runs long; other backends keep the plain
 * layout (their reference kernels gain nothing).
 */
export function channelsLastPatches(p: ConvProblem): boolean {
  const dims = p.attrs.kernel.length;
  return p.backend.name === 'wasm' && p.dtype === 'float32' && p.attrs.groups === 1 && p.attrs.dilation[dims - 1] === 1
    && p.inputShape[1]! >= CHANNELS_LAST_MIN_CHANNELS;
}

/** Fewer channels than this make runs too short for the channels-last layout to pay. */
const CHANNELS_LAST_MIN_CHANNELS = 8;

/**
 * The channels-last input [N, C, *s] as the patch primitives see it, [N, 1, *s', W·C] (s' = s
 * without its last axis W), and their geometry on it: along the merged axis a window of KW·C
 * elements moving C·stride at a time, with C·padding on each side. Its patch rows hold the taps
 * in (*k, c) order and the output has the convolution's spatial shape.
 */
export function channelsLastGeometry(inputShape: readonly number[], attrs: PatchAttrs): { shape: number[]; attrs: PatchAttrs } {
  const c = inputShape[1]!;
  const spatial = inputShape.slice(2);
  const d = spatial.length - 1;
  const scaleLast = (values: readonly number[], last: number) => [...values.slice(0, d), last];
  return {
    shape: [inputShape[0]!, 1, ...spatial.slice(0, d), spatial[d]! * c],
    attrs: {
      kernel: scaleLast(attrs.kernel, attrs.kernel[d]! * c),
      stride: scaleLast(attrs.stride, attrs.stride[d]! * c),
      dilation: scaleLast(attrs.dilation, 1),
      pads: [...attrs.pads.slice(0, d), [attrs.pads[d]![0] * c, attrs.pads[d]![1] * c]],
      groups: 1,
    },
  };
}

/** The backends with direct kernels worth measuring: the registered wasm backend (backend/wasm/conv-direct.ts). */
function directKernelCandidate(p: ConvProblem): boolean {
  const taps = p.attrs.kernel.reduce((a, b) => a * b, 1);
  // Mirrors directConvolutionFits in backend/wasm/conv-direct.ts (ops do not import a backend).
  return p.backend.name === 'wasm' && p.dtype === 'float32' && p.attrs.kernel.length <= 2 && taps <= 64;
}

/** The algorithm for this pass of this convolution: forced, cached, or measured now. */
export function chooseConvAlgorithm(pass: ConvPass, p: ConvProblem): ConvAlgorithm {
  if (forced !== undefined) return forced;
  if (!directKernelCandidate(p)) return 'im2col';
  const { kernel, stride, dilation, pads, groups } = p.attrs;
  const key = `${p.backend.name} ${pass} ${JSON.stringify({ x: p.inputShape, cOut: p.outChannels, bias: p.bias && pass === 'forward', kernel, stride, dilation, pads, groups })}`;
  let choice = choices.get(key);
  if (choice === undefined) {
    const t = timings(pass, p);
    choice = t.direct < t.im2col ? 'direct' : 'im2col';
    choices.set(key, choice);
  }
  return choice;
}

/** Timed runs of each path per measurement: at least MIN_RUNS, then more while under BUDGET_MS in all. */
const MIN_RUNS = 3, MAX_RUNS = 9, BUDGET_MS = 100;
/** Untimed runs of each path first: at least two, then more while under WARMUP_MS in all (at most MAX_WARMUP_RUNS). */
const WARMUP_MS = 60, MAX_WARMUP_RUNS = 10;

const contiguousStrides = (shape: readonly number[]): number[] => {
  const s: number[] = [];
  for (let d = shape.length - 1, st = 1; d >= 0; d--) { s[d] = st; st *= shape[d]!; }
  return s;
};

/**
 * Best milliseconds of each path for one pass of `p`, run through the backend's kernels
 * on zero-filled scratch tensors (exported for bench/conv-algorithms.ts, which prints the table above).
 */
export function timings(pass: ConvPass, p: ConvProblem): { direct: number; im2col: number } {
  const b = p.backend;
  const { dtype, attrs } = p;
  const [n, cIn] = [p.inputShape[0]!, p.inputShape[1]!];
  const cOut = p.outChannels, groups = attrs.groups, og = cOut / groups, cg = cIn / groups;
  const outSpatial = sweepWindows('conv', p.inputShape, attrs, attrs.pads);
  const L = sizeOf(outSpatial);
  const taps = sizeOf(attrs.kernel);
  const made: Storage[] = [];
  const tensor = (shape: readonly number[]): KernelInput => {
    const storage = b.alloc(dtype, sizeOf(shape));
    made.push(storage);
    return { storage, dtype, shape, strides: contiguousStrides(shape), offset: 0 };
  };
  const view = (t: KernelInput, shape: number[], strides: number[]): KernelInput => ({ ...t, shape, strides });
  const run = (prim: PrimitiveName, inputs: KernelInput[], a: unknown, shape: readonly number[]): KernelInput => {
    // A backend without its own kernel would fall back to the cpu one in dispatch; the candidates all have one.
    const kernel = b.kernel(prim) as unknown as (i: KernelInput[], a: unknown, o: OutputInfo) => Storage;
    const storage = kernel(inputs, a, { shape, dtype });
    made.push(storage);
    return { storage, dtype, shape, strides: contiguousStrides(shape), offset: 0 };
  };
  const x = tensor(p.inputShape);
  const outShape = [n, cOut, ...outSpatial];
  const colsShape = patchMatrixShape('conv', p.inputShape, attrs);
  // The forward's patches as convNd builds them: channels-last from a transposed copy of x, or
  // from x (convWeightGradient, the other pass, keeps the plain layout).
  const patches = (): KernelInput => {
    if (!channelsLastPatches(p)) return run('im2col', [x], attrs, colsShape);
    // x [N, C, *s] read as [N, *s, C], copied contiguous, seen as channelsLastGeometry's shape.
    const xs = contiguousStrides(p.inputShape);
    const nhwc = [n, ...p.inputShape.slice(2), cIn];
    const xl = run('contiguous', [view(x, nhwc, [xs[0]!, ...xs.slice(2), xs[1]!])], {}, nhwc);
    const last = channelsLastGeometry(p.inputShape, attrs);
    return run('im2col', [{ ...xl, shape: last.shape, strides: contiguousStrides(last.shape) }], last.attrs, patchMatrixShape('conv', last.shape, last.attrs));
  };
  let direct: () => void, im2col: () => void;
  const free = (from: number) => { for (const s of made.splice(from)) b.free(s); };
  if (pass === 'forward') {
    const w = tensor([cOut, cg, ...attrs.kernel]);
    const bias = p.bias ? tensor([cOut]) : undefined;
    direct = () => { const m = made.length; run('convDirect', bias ? [x, w, bias] : [x, w], attrs, outShape); free(m); };
    im2col = () => {
      const m = made.length;
      const cols = patches();
      // [g, C/g·K, C_out/g] view of the weight, as convNd builds it (the channels-last order only permutes K).
      const wmat = view(w, [groups, cg * taps, og], [og * cg * taps, 1, cg * taps]);
      const y = run('matmul', [cols, wmat], {}, [groups, n * L, og]);
      if (bias !== undefined) {
        // The bias add over y's permuted layout [g, N, L, og] → [N, C_out, L], as convNd's composite.
        const yv = view(y, [n, cOut, L], [L * og, 1, og]);
        const bv = view(bias, [n, cOut, L], [0, 1, 0]);
        run('add', [yv, bv], {}, [n, cOut, L]);
      }
      free(m);
    };
  } else {
    const g = tensor(outShape);
    direct = () => { const m = made.length; run('convWeightGrad', [x, g], attrs, [cOut, cg, ...attrs.kernel]); free(m); };
    im2col = () => {
      const m = made.length;
      const cols = run('im2col', [x], attrs, colsShape);
      // g [N, g, og, L] → [g, og, N, L] copied contiguous → [g, og, N·L] @ cols [g, N·L, C/g·K].
      const gp = run('contiguous', [view(g, [groups, og, n, L], [og * L, L, cOut * L, 1])], {}, [groups, og, n, L]);
      run('matmul', [view(gp, [groups, og, n * L], [og * n * L, n * L, 1]), cols], {}, [groups, og, cg * taps]);
      free(m);
    };
  }
  try {
    // Warm-up, alternating, for at least WARMUP_MS: the generated modules are compiled, and V8
    // runs a fresh module's baseline code (several times slower) until its optimised tier is
    // ready, which takes longer when the machine is busy; a choice measured on baseline code was
    // seen to pick the direct path for the CNN's conv2 (~40 ms instead of ~18 ms per forward).
    const warmStart = performance.now();
    for (let i = 0; i < MAX_WARMUP_RUNS && (i < 2 || performance.now() - warmStart < WARMUP_MS); i++) {
      direct();
      im2col();
    }
    // Alternating runs, the best of each: at least MIN_RUNS, more (up to MAX_RUNS) while within
    // the budget, so that a burst of load on a shared machine rarely decides for a small problem.
    let bestDirect = Infinity, bestIm2col = Infinity;
    const start = performance.now();
    for (let i = 0; i < MAX_RUNS && (i < MIN_RUNS || performance.now() - start < BUDGET_MS); i++) {
      let t0 = performance.now();
      direct();
      bestDirect = Math.min(bestDirect, performance.now() - t0);
      t0 = performance.now();
      im2col();
      bestIm2col = Math.min(bestIm2col, performance.now() - t0);
    }
    return { direct: bestDirect, im2col: bestIm2col };
  } finally {
    free(0);
  }
}
