// Who frees the gradients backward() computes on the way to the leaves.
//
// In PyTorch an intermediate cotangent is freed the moment the walk is done with it (reference
// counting). In JavaScript an unreferenced tensor waits for the garbage collector and then for a
// FinalizationRegistry callback, which only runs when the event loop turns: a synchronous training
// loop (`for (...) { loss.backward(); opt.step(); }`) would pile every step's cotangents up in the
// wasm heap until the loop ends. So backward disposes, as soon as it is done with them, the tensors
// that it alone made and it alone has seen:
// - only tensors created during this backward (their ids are at least the id mark taken at its
//   start): a vjp that hands back a tensor from elsewhere (a saved input, the caller's seed) keeps it;
// - never one a user function saw (a hook's argument or result), nor one backward returns
//   (torch.autograd.grad's results): those escape;
// - counting the walk's own references (one object can be the cotangent of several tensors, e.g.
//   add's vjp passes g on to both inputs), so an object goes only when its last reference does.
// Each vjp rule also runs in a scope: the temporaries it makes and does not return (softmax's
// backward makes three) go when it returns.
// A disposed object drops only its own reference to the storage: a view of it kept in a leaf's
// .grad keeps the memory alive. Nothing is disposed while a dispatch observer records (a trace
// keeps its tensors; its graph decides) or under createGraph (the new graph saves them).
import { scope } from '../core/memory.js';
import { nextTensorId, type Tensor } from '../core/tensor.js';
import { add } from '../ops/elementwise.js';
import { runHooks } from './hooks.js';

export class CotangentOwner {
  /** Tensors with an id below this existed before the backward started: never ours. */
  private readonly mark = nextTensorId();
  private readonly refs = new Map<Tensor, number>();
  private readonly escaped = new Set<Tensor>();

  constructor(private readonly active: boolean) {}

  private ours(t: Tensor): boolean {
    return this.active && t.id >= this.mark && !this.escaped.has(t);
  }

  /** Runs a vjp rule, disposing what it made and did not return. */
  runRule<T>(rule: () => T): T {
    return this.active ? scope(rule) : rule();
  }

  /** The walk holds one more reference to `t`. */
  hold(t: Tensor): void {
    if (this.ours(t)) this.refs.set(t, (this.refs.get(t) ?? 0) + 1);
  }

  /** The walk holds one reference fewer; the last one disposes a tensor that is ours. */
  release(t: Tensor): void {
    if (!this.ours(t)) return;
    const n = (this.refs.get(t) ?? 0) - 1;
    if (n > 0) {
      this.refs.set(t, n);
      return;
    }
    this.refs.delete(t);
    t.dispose();
  }

  /** Someone outside the walk has (or may keep) `t`: never dispose it. */
  escape(t: Tensor): void {
    if (!this.active) return;
    this.escaped.add(t);
    this.refs.delete(t);
  }

  /** Runs the tensor's hooks on its gradient; what a hook saw or returned belongs to the user. */
  hooked(t: Tensor, g: Tensor): Tensor {
    if (t.hooks.length === 0) return g;
    this.escape(g);
    const out = runHooks(t, g);
    this.escape(out);
    return out;
  }

  /** Adds `g` to x's cotangent in `cot`; the walk's reference moves from the old partial sum to the new one. */
  accumulate(cot: Map<Tensor, Tensor>, x: Tensor, g: Tensor): void {
    const prev = cot.get(x);
    const next = prev === undefined ? g : add(prev, g);
    cot.set(x, next);
    this.hold(next);
    if (prev !== undefined) this.release(prev);
  }
}
