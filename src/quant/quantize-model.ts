// quantizeModel: swaps the Linear layers of a module tree for QuantizedLinear layers (weight-only
// post-training quantization, like torch.ao.quantization.quantize_dynamic on {nn.Linear} or
// bitsandbytes' replace_linear), and reports what each swap saved and cost.
import { TesseraError } from '../core/errors.js';
import { itemsize } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { Linear } from '../nn/layers/linear.js';
import type { AnyModule } from '../nn/module.js';
import { dequantize } from './quantize.js';
import { QuantizedLinear, type LinearQuantizeOptions } from './quantized-linear.js';

export interface QuantizeModelOptions extends LinearQuantizeOptions {
  /**
   * Which Linear layers to quantize, by dotted name (as in namedModules()): a predicate, or a list of
   * names / regular expressions. Default: every Linear.
   */
  include?: ((name: string, layer: Linear) => boolean) | ReadonlyArray<string | RegExp>;
}

export interface QuantizedLayerReport {
  name: string;
  inFeatures: number;
  outFeatures: number;
  /** Bytes of weight and bias before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** max |W − Ŵ| over the weight, Ŵ the weight the layer applies: dequant(quant(W)), times the input scale for AWQ. */
  maxAbsError: number;
  /**
   * gptqQuantizeModel / awqQuantizeModel only: ||W X − Ŵ X||² / ||W X||² on the layer's calibration
   * inputs X, for the calibrated weight (outputError; for AWQ Ŵ includes the input scale) and for
   * round to nearest with the same grid (rtnOutputError).
   */
  outputError?: number;
  rtnOutputError?: number;
  /** awqQuantizeModel only: the exponent α of the chosen scales s = a^α. */
  alpha?: number;
}

export interface QuantizeModelReport {
  layers: QuantizedLayerReport[];
  /** Bytes of every parameter and buffer of the model (its state dict) before and after. */
  modelBytesBefore: number;
  modelBytesAfter: number;
  /** How the weights were rounded: to nearest (quantizeModel; also when absent), GPTQ or AWQ. */
  method?: 'rtn' | 'gptq' | 'awq';
}

export interface QuantizeModelResult<M extends AnyModule> {
  /** The model with its layers swapped (the same object, unless the root itself was a Linear). */
  model: M | QuantizedLinear;
  report: QuantizeModelReport;
}

export function tensorBytes(t: Tensor | undefined): number {
  return t === undefined ? 0 : t.size * itemsize(t.dtype);
}

/** Bytes of a module's state dict (parameters and persistent buffers). */
export function modelBytes(model: AnyModule): number {
  let n = 0;
  for (const t of model.stateDict().values()) n += tensorBytes(t);
  return n;
}

function selector(include: QuantizeModelOptions['include']): (name: string, layer: Linear) => boolean {
  if (include === undefined) return () => true;
  if (typeof include === 'function') return include;
  return (name) => include.some((p) => (typeof p === 'string' ? p === name : p.test(name)));
}

/** Replaces the child `name` of `parent` (containers keep their children outside plain fields). */
export function replaceChild(parent: AnyModule, name: string, child: AnyModule): void {
  // Module.setLocal is protected: it is the one place that knows how each container stores a child.
  (parent as unknown as { setLocal(n: string, v: AnyModule): void }).setLocal(name, child);
}

/** The (parent, local name) of every module below the root, by dotted name. */
export function parentsOf(model: AnyModule): Map<string, [AnyModule, string]> {
  const out = new Map<string, [AnyModule, string]>();
  for (const [prefix, m] of model.namedModules()) {
    for (const [name] of m.namedChildren()) out.set(prefix ? `${prefix}.${name}` : name, [m, name]);
  }
  return out;
}

/**
 * Quantizes the weights of the Linear layers of `model` (default: 8-bit symmetric, one scale per
 * output channel) and swaps each for a QuantizedLinear, in place. Inference only: the new layers
 * have no parameters; rebuild optimizers if you keep training the rest.
 */
export function quantizeModel<M extends AnyModule>(model: M, options: QuantizeModelOptions = {}): QuantizeModelResult<M> {
  const { include, ...qopts } = options;
  const modelBytesBefore = modelBytes(model);
  const layers: QuantizedLayerReport[] = [];
  const parents = parentsOf(model);
  let root: M | QuantizedLinear = model;
  const targets = linearTargets('quantizeModel', model, include);
  noGrad(() => {
    for (const [name, linear] of targets) {
      let q: QuantizedLinear;
      try {
        q = QuantizedLinear.fromLinear(linear, qopts);
      } catch (e) {
        throw withLayer('quantizeModel', name, linear, e);
      }
      layers.push(swapReport(name, linear, q));
      if (swapLinear(parents, name, linear, q)) root = q;
    }
  });
  const modelBytesAfter = modelBytes(root as AnyModule);
  return { model: root, report: { layers, modelBytesBefore, modelBytesAfter, method: 'rtn' } };
}

/** The Linear layers of `model` that `include` picks, by dotted name (an error when a filter picks none). */
export function linearTargets(op: string, model: AnyModule, include: QuantizeModelOptions['include']): Array<[string, Linear]> {
  const pick = selector(include);
  const targets = [...model.namedModules()].filter(([name, m]) => m instanceof Linear && pick(name, m as unknown as Linear)) as Array<[string, Linear]>;
  if (targets.length === 0 && include !== undefined) {
    const names = [...model.namedModules()].filter(([, m]) => m instanceof Linear).map(([n]) => n || '(root)');
    throw new TesseraError(`${op}: no Linear layer matches the include filter; the model's Linear layers are: ${names.join(', ') || 'none'}.`);
  }
  return targets;
}

/** A TesseraError from quantizing one layer, prefixed with the layer's name and shape. */
export function withLayer(op: string, name: string, linear: Linear, e: unknown): unknown {
  if (e instanceof TesseraError) return new TesseraError(`${op}: layer '${name || '(root)'}' (Linear ${linear.inFeatures} → ${linear.outFeatures}): ${e.message}`);
  return e;
}

/** The report row of replacing `linear` by `q` (bytes, max |ΔW| of the weight q applies, input scale included). */
export function swapReport(name: string, linear: Linear, q: QuantizedLinear): QuantizedLayerReport {
  const w = linear.weight.data();
  const back = dequantize(q.weight, { dtype: 'float64' }).data();
  const inputScale = q.input_scale?.data();
  const k = linear.inFeatures;
  let maxAbsError = 0;
  for (let i = 0; i < w.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(w[i]! - back[i]! * (inputScale === undefined ? 1 : inputScale[i % k]!)));
  return {
    name, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
    bytesBefore: tensorBytes(linear.weight) + tensorBytes(linear.bias), bytesAfter: q.nbytes, maxAbsError,
  };
}

/** Puts `q` in the place of the layer `name` (its training flag copied); true when that is the root (name ''), which has no parent. */
export function swapLinear(parents: Map<string, [AnyModule, string]>, name: string, linear: Linear, q: QuantizedLinear): boolean {
  q.training = linear.training;
  if (name === '') return true;
  const [parent, local] = parents.get(name)!;
  replaceChild(parent, local, q as unknown as AnyModule);
  return false;
}

/** The report as an aligned text table (with the output errors of RTN and GPTQ / AWQ, and AWQ's α, when the report has them). */
export function formatQuantizeReport(report: QuantizeModelReport): string {
  const withOutput = report.layers.some((l) => l.outputError !== undefined);
  const withAlpha = report.layers.some((l) => l.alpha !== undefined);
  const fmt = (v: number | undefined) => (v === undefined ? '-' : v.toExponential(2));
  const rows = report.layers.map((l) => [l.name || '(root)', `${l.inFeatures} → ${l.outFeatures}`, String(l.bytesBefore), String(l.bytesAfter),
    (l.bytesBefore / l.bytesAfter).toFixed(2) + 'x', l.maxAbsError.toExponential(2),
    ...(withOutput ? [fmt(l.rtnOutputError), fmt(l.outputError)] : []), ...(withAlpha ? [l.alpha === undefined ? '-' : l.alpha.toFixed(2)] : [])]);
  const method = report.method === 'awq' ? 'AWQ' : 'GPTQ';
  const header = ['layer', 'shape', 'bytes before', 'bytes after', 'ratio', 'max |ΔW|', ...(withOutput ? ['out err RTN', `out err ${method}`] : []), ...(withAlpha ? ['alpha'] : [])];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line),
    `model: ${report.modelBytesBefore} → ${report.modelBytesAfter} bytes (${(report.modelBytesBefore / report.modelBytesAfter).toFixed(2)}x smaller)`].join('\n');
}
