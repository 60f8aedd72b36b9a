// Token streams cut into training windows for language models (char-gpt, char-lstm, BPE models):
// record i is the window of `blockSize` tokens starting at i·stride, and its target is the same window
// shifted by one token (next-token prediction).

import { fromValues } from '../ops/creation.js';
import type { Tensor } from '../core/tensor.js';
import { checkIndex, type Dataset } from './dataset.js';

export interface SequenceDatasetOptions {
  /** Distance between the starts of consecutive windows (default: blockSize, i.e. non-overlapping). */
  stride?: number;
  backend?: string;
}

/** Windows of a token stream as [inputs, targets] int32 tensors of shape [blockSize] ([batch, blockSize] batched). */
export class SequenceDataset implements Dataset<Tensor[], Tensor[]> {
  readonly length: number;
  readonly stride: number;

  constructor(
    readonly tokens: Int32Array,
    readonly blockSize: number,
    private readonly options: SequenceDatasetOptions = {},
  ) {
    this.stride = options.stride ?? blockSize;
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`SequenceDataset: blockSize ${blockSize} must be a positive integer.`);
    if (!Number.isInteger(this.stride) || this.stride < 1) throw new Error(`SequenceDataset: stride ${this.stride} must be a positive integer.`);
    if (tokens.length < blockSize + 1) {
      throw new Error(`SequenceDataset: ${tokens.length} tokens cannot fill one window of ${blockSize} inputs plus its shifted target; use a smaller blockSize or more text.`);
    }
    this.length = Math.floor((tokens.length - blockSize - 1) / this.stride) + 1;
  }

  get(index: number): Tensor[] {
    const start = checkIndex(index, this.length, 'SequenceDataset') * this.stride;
    const opts = this.options.backend === undefined ? {} : { backend: this.options.backend };
    return [
      fromValues(this.tokens.slice(start, start + this.blockSize), [this.blockSize], 'int32', opts),
      fromValues(this.tokens.slice(start + 1, start + this.blockSize + 1), [this.blockSize], 'int32', opts),
    ];
  }

  getBatch(indices: Int32Array): Tensor[] {
    const t = this.blockSize;
    const inputs = new Int32Array(indices.length * t);
    const targets = new Int32Array(indices.length * t);
    for (let i = 0; i < indices.length; i++) {
      const start = checkIndex(indices[i]!, this.length, 'SequenceDataset') * this.stride;
      inputs.set(this.tokens.subarray(start, start + t), i * t);
      targets.set(this.tokens.subarray(start + 1, start + t + 1), i * t);
    }
    const opts = this.options.backend === undefined ? {} : { backend: this.options.backend };
    return [fromValues(inputs, [indices.length, t], 'int32', opts), fromValues(targets, [indices.length, t], 'int32', opts)];
  }
}

/** Splits a token stream into a leading training part and a trailing validation part (like nanoGPT's 90/10). */
export function splitTokens(tokens: Int32Array, validationFraction = 0.1): { train: Int32Array; validation: Int32Array } {
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new Error(`splitTokens: validationFraction ${validationFraction} must be in [0, 1).`);
  }
  const cut = Math.floor(tokens.length * (1 - validationFraction));
  return { train: tokens.subarray(0, cut), validation: tokens.subarray(cut) };
}
