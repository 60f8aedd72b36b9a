// Module: a tree of layers that owns parameters (trained tensors) and buffers (saved, not trained
// tensors such as BatchNorm's running statistics), like torch.nn.Module.
//
// Registration. A field that holds a Parameter or a Module is registered automatically, under the
// field's name, in the order the fields were first assigned (so `this.fc1 = new Linear(...)` is all a
// layer needs). Buffers are plain tensors, which cannot be told apart from cached values, so they are
// declared with registerBuffer(name, tensor); the field may then be reassigned freely. Names that must
// match PyTorch's state-dict keys (weight_ih_l0, running_mean) are used as field names as they are.
import { defaultFloatDType, isDType, isFloating, type DType } from '../core/dtype.js';
import { getBackend } from '../backend/backend.js';
import { check, fmtShape, TesseraError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { fromValues, zeros } from '../ops/creation.js';
import { cast } from '../ops/elementwise.js';
import { innermostDispatchObserver } from '../ops/dispatch.js';
import { assignValues } from './inplace.js';

/** A trained tensor of a module: a leaf that requires a gradient (unless created with requiresGrad false). */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    data.assertAlive('Parameter');
    super(data.storage, data.shape, data.strides, data.offset, data.dtype);
    this.requiresGrad = requiresGrad;
  }
}

/** A state dict: dotted names (`layers.0.weight`) to tensors, in registration order. */
export type StateDict = Map<string, Tensor>;

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** One row of Module.summary(). */
export interface SummaryRow {
  name: string;
  type: string;
  outputShape: number[] | string;
  /** Parameters owned directly by this module (not its children; shared ones only at their first owner). */
  parameters: number;
}

// While summary() runs, every Module.call reports its output here.
let summaryRecorder: ((m: AnyModule, out: unknown) => void) | undefined;

type Kind = 'parameter' | 'buffer' | 'module';

export class Module<In extends unknown[] = [Tensor], Out = Tensor> {
  /** Training mode (dropout active, batch statistics); eval() turns it off. */
  training = true;
  readonly #buffers = new Set<string>();
  readonly #nonPersistent = new Set<string>();

  /** The computation; subclasses override it. Call the module with `call(...)`. */
  forward(..._args: In): Out {
    throw new TesseraError(`${this.constructor.name}.forward: this module does not define forward(); containers such as ModuleList and ModuleDict are not callable, call their members.`);
  }

  /** Runs forward; calls go through here so that summary() can observe every layer's output. */
  call(...args: In): Out {
    const out = this.forward(...args);
    summaryRecorder?.(this as unknown as AnyModule, out);
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Registration

  /** Registers (or replaces) a parameter under `name`; the same as assigning the field. */
  registerParameter<P extends Parameter | undefined>(name: string, param: P): P {
    checkName(this, name);
    check(param === undefined || param instanceof Parameter, `${this.constructor.name}.registerParameter`, () =>
      `'${name}' must be a Parameter (wrap the tensor: new Parameter(t)).`);
    this.#buffers.delete(name);
    (this as unknown as Record<string, unknown>)[name] = param;
    return param;
  }

  /** Declares a buffer: a tensor saved in the state dict and moved by to(), but not trained. */
  registerBuffer<T extends Tensor | undefined>(name: string, tensor: T, persistent = true): T {
    checkName(this, name);
    check(!(tensor instanceof Parameter), `${this.constructor.name}.registerBuffer`, () => `'${name}' is a Parameter; use registerParameter for trained tensors.`);
    this.#buffers.add(name);
    if (persistent) this.#nonPersistent.delete(name);
    else this.#nonPersistent.add(name);
    (this as unknown as Record<string, unknown>)[name] = tensor;
    return tensor;
  }

  /** Registers a child module under `name`; the same as assigning the field. */
  registerModule<M extends AnyModule | undefined>(name: string, module: M): M {
    checkName(this, name);
    (this as unknown as Record<string, unknown>)[name] = module;
    return module;
  }

  /** This module's own entries (not its children's), in registration order. Containers override it. */
  protected localEntries(): Array<[string, Kind, Tensor | AnyModule | undefined]> {
    const out: Array<[string, Kind, Tensor | AnyModule | undefined]> = [];
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Parameter) out.push([key, 'parameter', value]);
      else if (value instanceof Module) out.push([key, 'module', value as AnyModule]);
      else if (this.#buffers.has(key) && (value === undefined || value instanceof Tensor)) out.push([key, 'buffer', value]);
    }
    return out;
  }

  /** Replaces one local entry (used by to()). */
  protected setLocal(name: string, value: Tensor | AnyModule): void {
    (this as unknown as Record<string, unknown>)[name] = value;
  }

  // ---------------------------------------------------------------------------------------------
  // Walking the tree

  /** Direct children with their names. */
  *namedChildren(): Generator<[string, AnyModule]> {
    for (const [name, kind, value] of this.localEntries()) if (kind === 'module' && value !== undefined) yield [name, value as AnyModule];
  }

  *children(): Generator<AnyModule> {
    for (const [, m] of this.namedChildren()) yield m;
  }

  /** This module and every descendant, depth first, each once (the root's name is ''). */
  *namedModules(prefix = '', seen = new Set<AnyModule>()): Generator<[string, AnyModule]> {
    const self = this as unknown as AnyModule;
    if (seen.has(self)) return;
    seen.add(self);
    yield [prefix, self];
    for (const [name, child] of this.namedChildren()) yield* child.namedModules(prefix ? `${prefix}.${name}` : name, seen);
  }

  *modules(): Generator<AnyModule> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /** Every parameter of the tree with its dotted name; a parameter shared by two modules is listed once. */
  *namedParameters(): Generator<[string, Parameter]> {
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, kind, value] of m.localEntries()) {
        if (kind !== 'parameter' || value === undefined || seen.has(value as Tensor)) continue;
        seen.add(value as Tensor);
        yield [prefix ? `${prefix}.${name}` : name, value as Parameter];
      }
    }
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(): Generator<[string, Tensor]> {
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, kind, value] of m.localEntries()) {
        if (kind === 'buffer' && value !== undefined) yield [prefix ? `${prefix}.${name}` : name, value as Tensor];
      }
    }
  }

  buffers(): Tensor[] {
    return [...this.namedBuffers()].map(([, b]) => b);
  }

  /** Number of parameter elements (shared parameters counted once). */
  parameterCount(onlyTrainable = false): number {
    let n = 0;
    for (const p of this.parameters()) if (!onlyTrainable || p.requiresGrad) n += p.size;
    return n;
  }

  // ---------------------------------------------------------------------------------------------
  // Modes and gradients

  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears the gradients of every parameter (sets them to undefined, like set_to_none=True). */
  zeroGrad(): void {
    // A gradient only autograd and the optimizers saw is disposed now (Tensor._replaceGrad).
    const dispose = innermostDispatchObserver() === undefined;
    for (const p of this.parameters()) p._replaceGrad(undefined, dispose);
  }

  /** Calls fn on every descendant, children before parents, then on this module (like torch's apply). */
  apply(fn: (m: AnyModule) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this as unknown as AnyModule);
    return this;
  }

  // ---------------------------------------------------------------------------------------------
  // State dicts

  /**
   * Parameters and persistent buffers by dotted name. The values share memory with the module
   * (detached views), like PyTorch's; clone them to keep a snapshot.
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [prefix, m] of this.namedModules()) {
      // Like PyTorch: a module's own parameters, then its own buffers, then its children's.
      const local = m.localEntries();
      for (const wanted of ['parameter', 'buffer'] as const) {
        for (const [name, kind, value] of local) {
          if (kind !== wanted || value === undefined) continue;
          if (kind === 'buffer' && m.#nonPersistent.has(name)) continue;
          out.set(prefix ? `${prefix}.${name}` : name, (value as Tensor).detach());
        }
      }
    }
    return out;
  }

  /**
   * Copies values into the parameters and buffers (in place, so optimizers keep working). With
   * `strict` (the default), missing and unexpected keys are an error; shape mismatches always are.
   */
  loadStateDict(stateDict: StateDict | Record<string, Tensor>, strict = true): LoadStateDictResult {
    const given = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [key, target] of own) {
      const src = given.get(key);
      if (src === undefined) continue;
      if (src.shape.length !== target.shape.length || src.shape.some((d, i) => d !== target.shape[i])) {
        mismatched.push(`${key}: checkpoint ${fmtShape(src.shape)} vs model ${fmtShape(target.shape)}`);
      }
    }
    const problems: string[] = [];
    if (mismatched.length) problems.push(`shape mismatch for ${mismatched.join('; ')}`);
    if (strict && missingKeys.length) problems.push(`missing keys (in the model, not in the state dict): ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected keys (in the state dict, not in the model): ${unexpectedKeys.join(', ')}`);
    if (problems.length) {
      throw new TesseraError(`${this.constructor.name}.loadStateDict: ${problems.join('. ')}. ` +
        'Build the model with the configuration that saved the checkpoint' + (strict ? ', or pass strict=false to load the keys that match.' : '.'));
    }
    noGrad(() => {
      for (const [key, target] of own) {
        const src = given.get(key);
        if (src !== undefined) assignValues(target, src.dtype === target.dtype ? src : cast(src, target.dtype), `loadStateDict (${key})`);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---------------------------------------------------------------------------------------------
  // Devices

  /**
   * Moves every parameter and buffer to `backend` ('cpu', 'wasm', ...), or with a dtype name
   * ('bfloat16', 'float16', 'float32', 'float64') casts the floating ones to it (integer buffers
   * keep their dtype, like torch's module.to(dtype)). Parameters are replaced by new Parameters
   * (build the optimizer after calling to()); tied parameters stay tied.
   */
  to(backendOrDType: string): this {
    if (isDType(backendOrDType)) return this.castFloating(backendOrDType);
    const backend = backendOrDType;
    getBackend(backend);
    const moved = new Map<Tensor, Tensor>();
    const move = (t: Tensor): Tensor => {
      if (t.backend === backend) return t;
      let m = moved.get(t);
      if (m === undefined) {
        const copy = fromValues(t.data(), t.shape, t.dtype, { backend });
        m = t instanceof Parameter ? new Parameter(copy, t.requiresGrad) : copy;
        moved.set(t, m);
      }
      return m;
    };
    for (const m of this.modules()) {
      for (const [name, kind, value] of m.localEntries()) {
        if (kind !== 'module' && value !== undefined) m.setLocal(name, move(value as Tensor));
      }
    }
    return this;
  }

  /** to(dtype): floating parameters and buffers cast to `dtype` (new tensors; ties kept). */
  private castFloating(dtype: DType): this {
    check(isFloating(dtype), 'Module.to', () => `can only cast to a floating dtype (float64, float32, bfloat16, float16), got '${dtype}'.`);
    const castTo = new Map<Tensor, Tensor>();
    const convert = (t: Tensor): Tensor => {
      if (!isFloating(t.dtype) || t.dtype === dtype) return t;
      let m = castTo.get(t);
      if (m === undefined) {
        const copy = noGrad(() => cast(t, dtype));
        m = t instanceof Parameter ? new Parameter(copy, t.requiresGrad) : copy;
        castTo.set(t, m);
      }
      return m;
    };
    for (const m of this.modules()) {
      for (const [name, kind, value] of m.localEntries()) {
        if (kind !== 'module' && value !== undefined) m.setLocal(name, convert(value as Tensor));
      }
    }
    return this;
  }

  // ---------------------------------------------------------------------------------------------
  // Description

  /**
   * Runs one forward pass on zeros of `inputShape` (without gradients) and returns a table of every
   * module called: name, type, output shape and its own parameter count, then the totals.
   */
  summary(inputShape: readonly number[], options: { dtype?: DType } = {}): string {
    const rows = this.summaryRows(inputShape, options);
    const header = ['Layer', 'Type', 'Output shape', 'Params'];
    const body = rows.map((r) => [r.name || '(root)', r.type, typeof r.outputShape === 'string' ? r.outputShape : fmtShape(r.outputShape), r.parameters.toLocaleString('en-US')]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cells: string[]): string => cells.map((c, i) => (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
    const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
    const total = this.parameterCount();
    const trainable = this.parameterCount(true);
    return [line(header), rule, ...body.map(line), rule,
      `Total parameters: ${total.toLocaleString('en-US')} (trainable ${trainable.toLocaleString('en-US')})`].join('\n');
  }

  /** The rows of summary() as data. */
  summaryRows(inputShape: readonly number[], options: { dtype?: DType } = {}): SummaryRow[] {
    const names = new Map<AnyModule, string>();
    for (const [name, m] of this.namedModules()) names.set(m, name);
    const rows: SummaryRow[] = [];
    const counted = new Set<Tensor>();
    const previous = summaryRecorder;
    summaryRecorder = (m, out) => {
      const name = names.get(m as AnyModule);
      if (name === undefined) return;
      // A parameter shared by several modules (a tied head) is counted at its first owner only, so the
      // column adds up to the total.
      let own = 0;
      for (const [, kind, value] of m.localEntries()) {
        if (kind !== 'parameter' || value === undefined || counted.has(value as Tensor)) continue;
        counted.add(value as Tensor);
        own += (value as Tensor).size;
      }
      rows.push({ name, type: m.constructor.name, outputShape: describeOutput(out), parameters: own });
    };
    try {
      const first = this.parameters()[0];
      const input = zeros(inputShape, { dtype: options.dtype ?? first?.dtype ?? defaultFloatDType(), backend: first?.backend });
      noGrad(() => (this as unknown as Module<[Tensor], unknown>).call(input));
    } finally {
      summaryRecorder = previous;
    }
    // Calls are recorded when they finish (children first); list parents first, in call order of entry.
    const order = [...names.values()];
    return rows.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  }
}

/** A module of any signature (for walking trees). */
export type AnyModule = Module<unknown[], unknown>;

function describeOutput(out: unknown): number[] | string {
  if (out instanceof Tensor) return [...out.shape];
  const describe = (o: unknown): string => (o instanceof Tensor ? fmtShape(o.shape) : Array.isArray(o) ? `(${o.map(describe).join(', ')})` : typeof o);
  if (Array.isArray(out)) return out.map(describe).join(', ');
  return typeof out;
}

function checkName(m: AnyModule, name: string): void {
  check(typeof name === 'string' && name.length > 0 && !name.includes('.'), `${m.constructor.name}.register`, () =>
    `name ${JSON.stringify(name)} must be a non-empty string without dots.`);
  check(!(name in Module.prototype) || Object.prototype.hasOwnProperty.call(m, name), `${m.constructor.name}.register`, () =>
    `name '${name}' would hide the Module method of that name; choose another.`);
}
