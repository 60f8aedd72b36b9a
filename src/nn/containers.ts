// Containers: Sequential (a pipeline), ModuleList (an indexed list) and ModuleDict (a named map).
// Their members are registered under their position ('0', '1', ...) or key, as in PyTorch.
import { check, TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { Module, type AnyModule } from './module.js';

type Entry = [string, 'parameter' | 'buffer' | 'module', Tensor | AnyModule | undefined];

/** Runs its modules one after another, each on the previous one's output. */
export class Sequential extends Module<[Tensor], Tensor> {
  readonly #layers: Module<[Tensor], Tensor>[];

  constructor(...layers: Module<[Tensor], Tensor>[]) {
    super();
    layers.forEach((l, i) => check(l instanceof Module, 'Sequential', () => `argument ${i} is not a Module.`));
    this.#layers = [...layers];
  }

  get length(): number {
    return this.#layers.length;
  }

  /** The i-th layer (negative counts from the end). */
  get(i: number): Module<[Tensor], Tensor> {
    const j = i < 0 ? i + this.#layers.length : i;
    check(Number.isInteger(j) && j >= 0 && j < this.#layers.length, 'Sequential.get', () => `index ${i} is outside a Sequential of ${this.#layers.length} layers.`);
    return this.#layers[j]!;
  }

  append(layer: Module<[Tensor], Tensor>): this {
    this.#layers.push(layer);
    return this;
  }

  [Symbol.iterator](): Iterator<Module<[Tensor], Tensor>> {
    return this.#layers[Symbol.iterator]();
  }

  override forward(x: Tensor): Tensor {
    for (const layer of this.#layers) x = layer.call(x);
    return x;
  }

  protected override localEntries(): Entry[] {
    return [...super.localEntries(), ...this.#layers.map((m, i): Entry => [String(i), 'module', m as unknown as AnyModule])];
  }

  protected override setLocal(name: string, value: Tensor | AnyModule): void {
    if (/^\d+$/.test(name)) this.#layers[Number(name)] = value as unknown as Module<[Tensor], Tensor>;
    else super.setLocal(name, value);
  }
}

/** A list of modules that are registered (their parameters show up in parameters()). */
export class ModuleList<M extends AnyModule = AnyModule> extends Module<never[], never> {
  readonly #items: M[];

  constructor(modules: Iterable<M> = []) {
    super();
    this.#items = [...modules];
  }

  get length(): number {
    return this.#items.length;
  }

  get(i: number): M {
    const j = i < 0 ? i + this.#items.length : i;
    check(Number.isInteger(j) && j >= 0 && j < this.#items.length, 'ModuleList.get', () => `index ${i} is outside a ModuleList of ${this.#items.length} modules.`);
    return this.#items[j]!;
  }

  append(m: M): this {
    this.#items.push(m);
    return this;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }

  protected override localEntries(): Entry[] {
    return [...super.localEntries(), ...this.#items.map((m, i): Entry => [String(i), 'module', m])];
  }

  protected override setLocal(name: string, value: Tensor | AnyModule): void {
    if (/^\d+$/.test(name)) this.#items[Number(name)] = value as M;
    else super.setLocal(name, value);
  }
}

/** Modules by name, in insertion order. */
export class ModuleDict<M extends AnyModule = AnyModule> extends Module<never[], never> {
  readonly #items = new Map<string, M>();

  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}) {
    super();
    const entries = Symbol.iterator in modules ? [...(modules as Iterable<[string, M]>)] : Object.entries(modules);
    for (const [k, m] of entries) this.set(k, m);
  }

  get size(): number {
    return this.#items.size;
  }

  get(key: string): M {
    const m = this.#items.get(key);
    if (m === undefined) throw new TesseraError(`ModuleDict.get: no module named '${key}' (keys: ${[...this.#items.keys()].join(', ') || 'none'}).`);
    return m;
  }

  has(key: string): boolean {
    return this.#items.has(key);
  }

  set(key: string, m: M): this {
    check(key.length > 0 && !key.includes('.'), 'ModuleDict.set', () => `key ${JSON.stringify(key)} must be non-empty and contain no dots.`);
    this.#items.set(key, m);
    return this;
  }

  keys(): IterableIterator<string> {
    return this.#items.keys();
  }

  entries(): IterableIterator<[string, M]> {
    return this.#items.entries();
  }

  protected override localEntries(): Entry[] {
    return [...super.localEntries(), ...[...this.#items].map(([k, m]): Entry => [k, 'module', m])];
  }

  protected override setLocal(name: string, value: Tensor | AnyModule): void {
    if (this.#items.has(name)) this.#items.set(name, value as M);
    else super.setLocal(name, value);
  }
}
