// Sorting: argsort, sort, topk. Values are gathered through the argsort indices, so they carry
// gradients (to the positions they came from) in both autodiff modes.
//
// Order follows PyTorch: NaN counts as larger than every number (last when ascending, first when
// descending), and ties keep their original order (a stable sort), so topk returns the first of
// equal values first.
import { check, fmtShape } from '../core/errors.js';
import { normalizeAxis } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { bind } from './dispatch.js';
import { gather } from './indexing.js';
import { narrow, reshape } from './shape.js';

export interface SortOptions {
  /** Largest first (default false). */
  descending?: boolean;
}

/** Values and the positions (int32) they came from, like PyTorch's (values, indices) pair. */
export interface SortResult {
  values: Tensor;
  indices: Tensor;
}

/** Indices that sort `x` along `axis` (stable). */
export function argsort(x: Tensor, axis = -1, opts: SortOptions = {}): Tensor {
  if (x.rank === 0) {
    normalizeAxis(axis, 0, 'argsort');
    return reshape(bind('argsort', [reshape(x, [1])], { axis: 0, descending: opts.descending ?? false }), []);
  }
  return bind('argsort', [x], { axis: normalizeAxis(axis, x.rank, 'argsort'), descending: opts.descending ?? false });
}

/** Sorts along `axis` (torch.sort): sorted values and the indices they came from. */
export function sort(x: Tensor, axis = -1, opts: SortOptions = {}): SortResult {
  const indices = argsort(x, axis, opts);
  const a = x.rank === 0 ? 0 : normalizeAxis(axis, x.rank, 'sort');
  return { values: gather(x, a, indices), indices };
}

export interface TopkOptions {
  /** The k largest (default true) or the k smallest. */
  largest?: boolean;
}

/** The k largest (or smallest) entries along `axis`, in sorted order (torch.topk). */
export function topk(x: Tensor, k: number, axis = -1, opts: TopkOptions = {}): SortResult {
  const a = x.rank === 0 ? 0 : normalizeAxis(axis, x.rank, 'topk');
  const n = x.rank === 0 ? 1 : x.shape[a]!;
  check(Number.isInteger(k) && k >= 0 && k <= n, 'topk', () =>
    `k = ${k} is out of range for axis ${axis} of size ${n} (shape ${fmtShape(x.shape)}); k must be in [0, ${n}].`);
  const order = argsort(x, a, { descending: opts.largest ?? true });
  const indices = x.rank === 0 ? order : narrow(order, a, 0, k);
  return { values: gather(x, a, indices), indices };
}

declare module '../core/tensor.js' {
  interface Tensor {
    argsort(axis?: number, opts?: SortOptions): Tensor;
    sort(axis?: number, opts?: SortOptions): SortResult;
    topk(k: number, axis?: number, opts?: TopkOptions): SortResult;
  }
}

const P = Tensor.prototype;
P.argsort = function (a, o) { return argsort(this, a, o); };
P.sort = function (a, o) { return sort(this, a, o); };
P.topk = function (k, a, o) { return topk(this, k, a, o); };
