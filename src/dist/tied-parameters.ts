// Parameters shared between pipeline stages on different ranks: a GPT's token embedding, used by
// the first stage to embed and by the last stage as the output head (Press & Wolf 2017's weight
// tying). Within one process the tie is one Parameter object and autograd sums its two
// gradients; across ranks each holder has its own copy, so, as Megatron-LM does with its
// "embedding group" (Shoeybi et al. 2019; megatron/core/distributed finalize_model_grads), the
// copies start equal (the lowest holder's values) and after every step each holder's gradient is
// replaced by the sum over the holders. The same update on equal copies keeps them equal.
//
// Ranks name their tied parameters; the names are matched over the group once (a hash of each
// name, its element count and dtype all-gathered), so a tie held by ranks that disagree on its
// size fails with an error on every rank instead of exchanging mismatched values. The sums are
// point-to-point messages between the holders only, added in rank order on every holder, so every
// copy gets the same bits.
import { TesseraError } from '../core/errors.js';
import type { Parameter } from '../nn/module.js';
import { assignValues } from '../nn/inplace.js';
import { tensor } from '../ops/creation.js';
import { noGrad } from '../autodiff/mode.js';
import type { Tensor } from '../core/tensor.js';
import type { ProcessGroup } from './process-group.js';
import { commDType } from './tensor-sync.js';
import { allocArray } from './types.js';

/** A parameter this rank shares with other ranks; ranks sharing one give it the same name. */
export interface TiedParameter {
  readonly name: string;
  readonly parameter: Parameter;
}

/** A tie as matched over the group: this rank's copy and every holder (ranks ascending). */
interface MatchedTie {
  readonly name: string;
  readonly parameter: Parameter;
  readonly holders: readonly number[];
  /** Tag offset of this tie's messages (values, then gradients). */
  readonly index: number;
}

/** 32-bit FNV-1a of a name: ties are matched by it (and by size and dtype) across ranks. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const DTYPE_CODES = ['float64', 'float32', 'float16', 'bfloat16'] as const;

export class TiedParameters {
  private readonly ties: readonly TiedParameter[];
  private matched: MatchedTie[] | undefined;

  /**
   * `ties`: this rank's shared parameters (possibly none: every rank of the group takes part in
   * matching them). `tagBase`: the first point-to-point tag free for these messages in `group`.
   */
  constructor(private readonly group: ProcessGroup, ties: readonly TiedParameter[], private readonly tagBase: number, private readonly owner: string) {
    const names = new Set<string>();
    for (const t of ties) {
      if (names.has(t.name)) throw new TesseraError(`${owner}: tied parameter '${t.name}' is listed twice on this rank; a rank holds one copy of each tie.`);
      names.add(t.name);
      commDType(t.parameter.dtype, `${owner}: tied parameter '${t.name}'`);
    }
    this.ties = ties;
  }

  /** Whether the ties were matched (and the copies made equal) already. */
  get ready(): boolean {
    return this.matched !== undefined;
  }

  /** The matched ties (names, holders); undefined before `setUp`. */
  get holders(): ReadonlyMap<string, readonly number[]> | undefined {
    return this.matched === undefined ? undefined : new Map(this.matched.map((t) => [t.name, t.holders]));
  }

  /**
   * Matches the ties over the group and gives every holder the lowest holder's values. Every rank
   * of the group must call it (it all-gathers), once, before the first forward pass.
   */
  async setUp(): Promise<void> {
    const p = this.group.size;
    const mine = Float64Array.from(this.ties.flatMap((t) => [nameHash(t.name), t.parameter.size, DTYPE_CODES.indexOf(t.parameter.dtype as typeof DTYPE_CODES[number])]));
    const counts = await this.group.allGather(Float64Array.of(mine.length)).wait();
    const all = await this.group.allGather(mine, { counts: Array.from(counts) }).wait();
    // Every rank's (hash, size, dtype) triples.
    const byRank: { hash: number; size: number; dtype: number }[][] = [];
    let at = 0;
    for (let r = 0; r < p; r++) {
      const triples: { hash: number; size: number; dtype: number }[] = [];
      for (let k = 0; k < counts[r]!; k += 3) triples.push({ hash: all[at + k]!, size: all[at + k + 1]!, dtype: all[at + k + 2]! });
      byRank.push(triples);
      at += counts[r]!;
    }
    // Ties are numbered by hash, the same on every rank, for their message tags.
    const hashes = [...new Set(byRank.flat().map((t) => t.hash))].sort((a, b) => a - b);
    this.matched = this.ties.map((t) => {
      const hash = nameHash(t.name);
      const holders: number[] = [];
      for (let r = 0; r < p; r++) {
        const other = byRank[r]!.find((x) => x.hash === hash);
        if (other === undefined) continue;
        if (other.size !== t.parameter.size || DTYPE_CODES[other.dtype] !== t.parameter.dtype) {
          throw new TesseraError(`${this.owner}: tied parameter '${t.name}' has ${t.parameter.size} ${t.parameter.dtype} elements (shape [${t.parameter.shape.join(', ')}]) on rank ${this.group.rank} ` +
            `but ${other.size} ${DTYPE_CODES[other.dtype] ?? '?'} elements on rank ${r}; the ranks sharing a tie must hold the same tensor.`);
        }
        holders.push(r);
      }
      return { name: t.name, parameter: t.parameter, holders, index: hashes.indexOf(hash) };
    });
    await this.syncValues();
  }

  /** Copies the lowest holder's values of each tie to the other holders. */
  private async syncValues(): Promise<void> {
    const me = this.group.rank;
    const pending: Promise<unknown>[] = [];
    for (const tie of this.matched!) {
      if (tie.holders.length < 2) continue;
      const source = tie.holders[0]!;
      const dtype = commDType(tie.parameter.dtype, this.owner);
      const tag = this.tagBase + 2 * tie.index;
      if (me === source) {
        const values = allocArray(dtype, tie.parameter.size);
        values.set(tie.parameter.data());
        for (const r of tie.holders.slice(1)) pending.push(this.group.send(values, r, { tag }).wait());
      } else {
        pending.push(this.group.recv(allocArray(dtype, tie.parameter.size), source, { tag }).wait().then((values) => {
          noGrad(() => assignValues(tie.parameter, values, `${this.owner}: tied parameter '${tie.name}'`));
        }));
      }
    }
    await Promise.all(pending);
  }

  /**
   * Takes the tied parameters' gradients off them before a step (returned, to be added back by
   * `sumGradients`), so that the exchange after the step carries this step's gradients only.
   */
  takeGradients(): (Tensor | undefined)[] {
    return this.matched!.map((tie) => {
      const g = tie.parameter._peekGrad();
      tie.parameter._replaceGrad(undefined, false);
      return g;
    });
  }

  /**
   * After a step: each holder's gradient becomes `before` + the sum over the holders of this
   * step's gradients, added in rank order (the same bits on every holder). A holder whose copy
   * got no gradient counts zeros. Every holder of a tie must call it after the same step.
   */
  async sumGradients(before: readonly (Tensor | undefined)[]): Promise<void> {
    const me = this.group.rank;
    await Promise.all(this.matched!.map(async (tie, k) => {
      const param = tie.parameter;
      const previous = before[k];
      if (tie.holders.length < 2) {
        if (previous !== undefined) restore(param, previous);
        return;
      }
      const dtype = commDType(param.dtype, this.owner);
      const tag = this.tagBase + 2 * tie.index + 1;
      const own = allocArray(dtype, param.size);
      const g = param._peekGrad();
      if (g !== undefined) own.set(g.data());
      const sends = tie.holders.filter((r) => r !== me).map((r) => this.group.send(own, r, { tag }).wait());
      const parts = await Promise.all(tie.holders.map((r) => (r === me ? Promise.resolve(own) : this.group.recv(allocArray(dtype, param.size), r, { tag }).wait())));
      await Promise.all(sends);
      const sum = new Float64Array(param.size);
      for (const part of parts) for (let i = 0; i < sum.length; i++) sum[i]! += part[i]!;
      const total = tensor(dtype === 'float64' ? sum : Float32Array.from(sum), { shape: [...param.shape], dtype: param.dtype, backend: param.storage.backend.name });
      param._replaceGrad(total, true);
      if (previous !== undefined) restore(param, previous);
    }));
  }
}

/** Puts a gradient taken off before the step back under the step's: previous + current. */
function restore(param: Parameter, previous: Tensor): void {
  const current = param._peekGrad();
  // `previous` is not disposed: the caller may have read it before the step.
  param._replaceGrad(current === undefined ? previous : noGrad(() => previous.add(current)), true);
}
