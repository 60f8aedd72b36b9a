// Dynamic axes for ONNX export (torch.onnx.export's dynamic_axes): a model that accepts any size
// on chosen input axes, although tessera's tracer records static shapes.
//
// How: the function is traced at the example sizes and, for each symbol (a named dynamic size), at
// two other sizes (one and two below the example's, or above it when it is under 4). The translated graphs must have the same nodes; what may differ are the
// constants the translation wrote (a Reshape's target shape, an Expand's shape, a mean's count) and
// the graph's input and output shapes. Each entry of a constant that differs is fitted, from those
// three sizes, as either a·s + b in one symbol s, or c·s₁·s₂·… (a flatten of batch × sequence);
// the constant is then computed in the graph from the inputs' runtime sizes (Shape → Mul/Add →
// Concat → Reshape/Cast) under its old name, so the nodes that read it are unchanged. Inputs get
// symbolic dims; outputs get the fitted expression as their dim name ('batch', 'batch*64').
//
// Constants whose shape follows a size are written when they are an arange (Range) or filled with
// one value (ConstantOfShape: an initial state of zeros). What this cannot write is refused with
// the constant or node named: another constant whose shape changes with a symbol (a mask built
// from the size), an attribute that depends on it,
// an entry that fits neither form, or a graph whose operations change with the size.
import { noGrad } from '../autodiff/mode.js';
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { cat } from '../ops/combine.js';
import { narrow } from '../ops/shape.js';
import type { GraphDesc, NodeDesc, TensorDesc, ValueDesc } from './encode.js';
import { ElemType } from './proto.js';

/** A dynamic size: its name, its example size, and the input axes that carry it. */
interface SizeSymbol {
  readonly name: string;
  readonly size: number;
  readonly uses: { input: number; axis: number }[];
}

/** An entry's value as a function of the symbols: coef · Π syms + offset (offset 0 when several). */
interface Expr {
  readonly coef: number;
  readonly syms: readonly string[];
  readonly offset: number;
}

/** The graph of `describe(exampleInputs)` with the sizes named in `spec` made dynamic. */
export function dynamicGraphDesc(
  exampleInputs: readonly Tensor[],
  inputNames: readonly string[],
  spec: Readonly<Record<string, Readonly<Record<number, string>> | readonly number[]>>,
  opset: number,
  describe: (inputs: readonly Tensor[]) => GraphDesc,
): GraphDesc {
  const symbols = parseSpec(exampleInputs, inputNames, spec);
  const base = describe(exampleInputs);
  if (symbols.length === 0) return base;
  // variants[k] = the graphs at two more sizes of symbols[k]: one and two below the example's when
  // that leaves at least 2 (models often have a maximum length, such as a GPT's block size; a size
  // of 1 may broadcast), else one and two above.
  const steps = symbols.map((s) => (s.size >= 4 ? -1 : 1));
  const variants = symbols.map((s, k) => [1, 2].map((n) => {
    const size = s.size + n * steps[k]!;
    const g = describe(resized(exampleInputs, s, size));
    checkSameStructure(base, g, s, size);
    return g;
  }));
  /** Fits an entry from its values at the example's sizes and at each symbol's two other sizes. */
  const fit = (e0: number, at: (k: number, extra: 0 | 1) => number): Expr | undefined => {
    const moved = symbols.map((s, k) => ({ s, step: steps[k]!, e1: at(k, 0), e2: at(k, 1) })).filter((m) => m.e1 !== e0 || m.e2 !== e0);
    if (moved.length === 0) return { coef: 0, syms: [], offset: e0 };
    if (moved.length === 1) {
      const { s, step, e1, e2 } = moved[0]!;
      const a = (e1 - e0) / step;
      if (e2 - e1 !== a * step || !Number.isInteger(a) || !Number.isInteger(e0)) return undefined;
      return { coef: a, syms: [s.name], offset: e0 - a * s.size };
    }
    const product = moved.reduce((p, m) => p * m.s.size, 1);
    const c = e0 / product;
    if (!Number.isInteger(c)) return undefined;
    const fits = moved.every(({ s, step, e1, e2 }) => e1 === (c * product / s.size) * (s.size + step) && e2 === (c * product / s.size) * (s.size + 2 * step));
    return fits ? { coef: c, syms: moved.map((m) => m.s.name), offset: 0 } : undefined;
  };

  const builder = new SizeGraph(base, symbols, opset);
  const initializers: Record<string, TensorDesc> = {};
  for (const [name, t] of Object.entries(base.initializers ?? {})) {
    const others = variants.map((pair) => pair.map((g) => g.initializers![name]!));
    if (others.flat().some((o) => o.dims.length !== t.dims.length || o.dims.some((d, i) => d !== t.dims[i]))) {
      // An arange whose length follows the sizes (a position index): computed with Range.
      const progression = arithmetic(t);
      const length = t.dims.length === 1 ? fit(t.dims[0]!, (k, extra) => others[k]![extra]!.dims[0] ?? NaN) : undefined;
      if (progression !== undefined && length !== undefined && others.flat().every((o) => o.dims.length === 1 && sameProgression(arithmetic(o), progression))) {
        builder.computeRange(name, t.type, length, progression.start, progression.step);
        continue;
      }
      // A filled tensor whose shape follows the sizes (zeros for an initial state): ConstantOfShape.
      const fill = filledWith(t);
      const dims = others.flat().every((o) => o.dims.length === t.dims.length && filledWith(o) === fill)
        ? t.dims.map((d, axis) => fit(d, (k, extra) => others[k]![extra]!.dims[axis]!)) : [];
      if (fill !== undefined && dims.length === t.dims.length && dims.every((d) => d !== undefined)) {
        builder.computeFill(name, t.type, dims as Expr[], fill);
        continue;
      }
      const s = symbols[others.findIndex((pair) => pair.some((o) => o.dims.join() !== t.dims.join()))]!;
      throw new TesseraError(`exportOnnx: the constant '${name}' (shape [${t.dims.join(', ')}]) changes its shape with the size of '${s.name}': `
        + 'it was built from that size (such as an arange, a mask or a position table sliced to it), and an exported constant cannot follow it. '
        + `Build it inside the function from a fixed-size tensor, or export with a static size for '${s.name}'.`);
    }
    const exprs: Expr[] = [];
    let dynamic = false;
    for (let i = 0; i < t.values.length; i++) {
      const e0 = Number(t.values[i]);
      const expr = fit(e0, (k, extra) => Number(others[k]![extra]!.values[i]));
      if (expr === undefined) {
        throw new TesseraError(`exportOnnx: entry ${i} of the constant '${name}' (${e0} at the example sizes) depends on the dynamic sizes `
          + `(${symbols.map((s) => `'${s.name}'`).join(', ')}) in a way export cannot compute (neither a·size + b nor a product of sizes). Export with static sizes.`);
      }
      if (expr.syms.length > 0) dynamic = true;
      exprs.push(expr);
    }
    if (dynamic) builder.computeConstant(name, t, exprs);
    else initializers[name] = t;
  }

  const dimName = (e0: number, at: (k: number, extra: 0 | 1) => number, fallback: string): number | string => {
    const expr = fit(e0, at);
    if (expr === undefined) return fallback;
    return expr.syms.length === 0 ? e0 : exprName(expr);
  };
  const outputs: ValueDesc[] = base.outputs.map((o, k) => ({
    ...o,
    shape: o.shape?.map((d, axis) => dimName(Number(d), (j, extra) => Number(variants[j]![extra]!.outputs[k]!.shape![axis]), `${o.name}_dim${axis}`)),
  }));
  const inputs: ValueDesc[] = base.inputs.map((v, i) => ({
    ...v,
    shape: v.shape?.map((d, axis) => symbols.find((s) => s.uses.some((u) => u.input === i && u.axis === axis))?.name ?? d),
  }));
  return { ...base, inputs, outputs, initializers, nodes: [...builder.nodes, ...base.nodes] };
}

/** start, start + step, start + 2·step, … (undefined for other values, or fewer than 2 entries). */
function arithmetic(t: TensorDesc): { start: number; step: number } | undefined {
  if (t.dims.length !== 1 || t.values.length < 2) return undefined;
  const start = Number(t.values[0]), step = Number(t.values[1]) - start;
  for (let i = 2; i < t.values.length; i++) if (Number(t.values[i]) !== start + i * step) return undefined;
  return Number.isInteger(start) && Number.isInteger(step) ? { start, step } : undefined;
}

/** The value every element has (undefined when they differ, or there are none). */
function filledWith(t: TensorDesc): number | undefined {
  if (t.values.length === 0) return undefined;
  const v = Number(t.values[0]);
  for (let i = 1; i < t.values.length; i++) if (!Object.is(Number(t.values[i]), v)) return undefined;
  return v;
}

function sameProgression(a: { start: number; step: number } | undefined, b: { start: number; step: number }): boolean {
  return a !== undefined && a.start === b.start && a.step === b.step;
}

/** 'batch', '2*batch', 'batch+1', 'batch*seq'. */
function exprName(e: Expr): string {
  const product = e.syms.join('*');
  const scaled = e.coef === 1 ? product : `${e.coef}*${product}`;
  return e.offset === 0 ? scaled : `${scaled}${e.offset > 0 ? '+' : '-'}${Math.abs(e.offset)}`;
}

function parseSpec(
  inputs: readonly Tensor[], inputNames: readonly string[],
  spec: Readonly<Record<string, Readonly<Record<number, string>> | readonly number[]>>,
): SizeSymbol[] {
  const symbols = new Map<string, SizeSymbol>();
  for (const [inputName, axes] of Object.entries(spec)) {
    const i = inputNames.indexOf(inputName);
    if (i < 0) {
      throw new TesseraError(`exportOnnx: dynamicAxes names the input '${inputName}', but the inputs are ${inputNames.map((n) => `'${n}'`).join(', ')}.`);
    }
    const x = inputs[i]!;
    const entries: [number, string][] = Array.isArray(axes)
      ? (axes as readonly number[]).map((a) => [a, `${inputName}_dim${a < 0 ? a + x.rank : a}`])
      : Object.entries(axes).map(([a, n]) => [Number(a), n as string]);
    for (const [a, name] of entries) {
      const axis = a < 0 ? a + x.rank : a;
      if (!Number.isInteger(axis) || axis < 0 || axis >= x.rank) {
        throw new TesseraError(`exportOnnx: dynamicAxes gives axis ${a} of '${inputName}', which has shape [${x.shape.join(', ')}].`);
      }
      if (typeof name !== 'string' || name === '') throw new TesseraError(`exportOnnx: dynamicAxes: axis ${a} of '${inputName}' needs a non-empty name.`);
      const size = x.shape[axis]!;
      const have = symbols.get(name);
      if (have === undefined) symbols.set(name, { name, size, uses: [{ input: i, axis }] });
      else if (have.size !== size) {
        throw new TesseraError(`exportOnnx: the dynamic size '${name}' is ${have.size} on one example input and ${size} on axis ${axis} of '${inputName}'; `
          + 'axes that share a name must have the same size in the examples.');
      } else have.uses.push({ input: i, axis });
    }
  }
  return [...symbols.values()];
}

/** The inputs with every axis of symbol `s` cut or grown to `size` (growing repeats their leading entries). */
function resized(inputs: readonly Tensor[], s: SizeSymbol, size: number): Tensor[] {
  return noGrad(() => inputs.map((x, i) => {
    let y = x;
    for (const { axis } of s.uses.filter((u) => u.input === i)) {
      if (size <= y.shape[axis]!) { y = narrow(y, axis, 0, size); continue; }
      const pieces = [y];
      for (let have = y.shape[axis]!; have < size; have += Math.min(size - have, x.shape[axis]!)) {
        pieces.push(narrow(y, axis, 0, Math.min(size - have, x.shape[axis]!)));
      }
      y = cat(pieces, axis);
    }
    return y;
  }));
}

function checkSameStructure(base: GraphDesc, other: GraphDesc, s: SizeSymbol, size: number): void {
  const fail = (what: string): never => {
    throw new TesseraError(`exportOnnx: the traced graph changes with the size of '${s.name}' (${s.size} in the example, traced again at ${size}): ${what}. `
      + 'Dynamic axes need the same operations at every size; a size of 1 often differs (broadcasting), so give examples of size ≥ 2 on dynamic axes, or export with static sizes.');
  };
  if (base.nodes.length !== other.nodes.length) fail(`${base.nodes.length} ONNX nodes vs ${other.nodes.length}`);
  base.nodes.forEach((n, i) => {
    const o = other.nodes[i]!;
    if (n.op !== o.op || n.inputs.join() !== o.inputs.join() || n.outputs.join() !== o.outputs.join()) fail(`node #${i} is ${n.op} vs ${o.op}`);
    const attrs = new Set([...Object.keys(n.attrs ?? {}), ...Object.keys(o.attrs ?? {})]);
    for (const a of attrs) {
      if (JSON.stringify(n.attrs?.[a]) !== JSON.stringify(o.attrs?.[a])) fail(`attribute '${a}' of node #${i} (${n.op}) depends on it`);
    }
  });
  const names = (g: GraphDesc): string => Object.keys(g.initializers ?? {}).sort().join();
  if (names(base) !== names(other)) fail('its constants differ');
}

/** The nodes that compute dynamic constants from the inputs' runtime sizes. */
class SizeGraph {
  readonly nodes: NodeDesc[] = [];
  private readonly taken: Set<string>;
  private readonly sizeOf = new Map<string, string>();
  private counter = 0;

  constructor(private readonly base: GraphDesc, private readonly symbols: readonly SizeSymbol[], private readonly opset: number) {
    this.taken = new Set([
      ...base.inputs.map((v) => v.name), ...base.outputs.map((v) => v.name), ...Object.keys(base.initializers ?? {}),
      ...base.nodes.flatMap((n) => [...n.inputs, ...n.outputs]),
    ]);
  }

  private fresh(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }

  private add(op: string, inputs: readonly string[], attrs?: NodeDesc['attrs'], output = this.fresh(`dyn_${this.counter++}`)): string {
    this.nodes.push({ op, inputs, outputs: [output], ...(attrs === undefined ? {} : { attrs }) });
    return output;
  }

  private int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = this.fresh(`dyn_c${this.counter++}`);
    this.add('Constant', [], { value: { tensor: { type: ElemType.INT64, dims, values } } }, name);
    return name;
  }

  /** int64 [1]: the runtime size of symbol `name` (the first input axis that carries it). */
  private size(name: string): string {
    let have = this.sizeOf.get(name);
    if (have === undefined) {
      const s = this.symbols.find((x) => x.name === name)!;
      const { input, axis } = s.uses[0]!;
      const x = this.base.inputs[input]!.name;
      have = this.opset >= 15
        ? this.add('Shape', [x], { start: axis, end: axis + 1 }, this.fresh(`${name}_size`))
        : this.add('Gather', [this.add('Shape', [x]), this.int64([axis])], { axis: 0 }, this.fresh(`${name}_size`));
      this.sizeOf.set(name, have);
    }
    return have;
  }

  /** int64 [1]: the value of `e` at run time. */
  private value(e: Expr): string {
    if (e.syms.length === 0) return this.int64([e.offset]);
    let v = this.size(e.syms[0]!);
    for (const s of e.syms.slice(1)) v = this.add('Mul', [v, this.size(s)]);
    if (e.coef !== 1) v = this.add('Mul', [v, this.int64([e.coef])]);
    if (e.offset !== 0) v = this.add('Add', [v, this.int64([e.offset])]);
    return v;
  }

  /** Writes a Range for the arange `name`: `length` entries from `start` by `step`. */
  computeRange(name: string, type: number, length: Expr, start: number, step: number): void {
    const scalar = (v: string): string => this.add('Reshape', [v, this.int64([], [0])]);
    const limit = this.add('Add', [this.add('Mul', [this.value(length), this.int64([step])]), this.int64([start])]);
    const range = this.add('Range', [scalar(this.int64([start])), scalar(limit), scalar(this.int64([step]))], undefined, type === ElemType.INT64 ? name : undefined);
    if (type !== ElemType.INT64) this.add('Cast', [range], { to: type }, name);
  }

  /** Writes a ConstantOfShape for `name`: every element `value`, dims as fitted. */
  computeFill(name: string, type: number, dims: readonly Expr[], value: number): void {
    const shape = dims.length === 0 ? this.int64([], [0]) : this.add('Concat', dims.map((d) => this.value(d)), { axis: 0 });
    this.add('ConstantOfShape', [shape], { value: { tensor: { type, dims: [1], values: [value] } } }, name);
  }

  /** Writes nodes that compute the constant `name` (entries as fitted) under that name. */
  computeConstant(name: string, t: TensorDesc, exprs: readonly Expr[]): void {
    const pieces: string[] = [];
    let run: number[] = [];
    const flush = (): void => { if (run.length > 0) pieces.push(this.int64(run)); run = []; };
    for (const e of exprs) {
      if (e.syms.length === 0) { run.push(e.offset); continue; }
      flush();
      pieces.push(this.value(e));
    }
    flush();
    const isVector = t.dims.length === 1;
    const typed = t.type === ElemType.INT64;
    let flat = pieces.length === 1 ? pieces[0]! : this.add('Concat', pieces, { axis: 0 }, isVector && typed ? name : undefined);
    if (flat === name) return;
    if (!isVector) flat = this.add('Reshape', [flat, this.int64([...t.dims])], undefined, typed ? name : undefined);
    if (!typed) this.add('Cast', [flat], { to: t.type }, name);
    else if (isVector) this.add('Identity', [flat], undefined, name);
  }
}
