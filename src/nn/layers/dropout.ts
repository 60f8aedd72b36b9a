// Dropout and Embedding layers.
import { defaultFloatDType } from '../../core/dtype.js';
import { check } from '../../core/errors.js';
import type { Generator } from '../../core/random.js';
import type { Tensor } from '../../core/tensor.js';
import { zeros } from '../../ops/creation.js';
import { dropout, embedding } from '../../ops/nn/index.js';
import { normal_ } from '../init.js';
import { assignValues } from '../inplace.js';
import { Module, Parameter } from '../module.js';
import type { LayerOptions } from './linear.js';

/** Zeroes elements with probability p during training (scaling the rest by 1/(1-p)); identity in eval mode. */
export class Dropout extends Module {
  constructor(readonly p = 0.5, readonly generator?: Generator) {
    super();
    check(p >= 0 && p <= 1, 'Dropout', () => `p must be in [0, 1], got ${p}.`);
  }
  override forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, ...(this.generator ? { generator: this.generator } : {}) });
  }
}

export interface EmbeddingLayerOptions extends LayerOptions {
  paddingIdx?: number;
}

/** A table of numEmbeddings vectors of size embeddingDim, initialised N(0, 1) like PyTorch's. */
export class Embedding extends Module {
  weight: Parameter;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, readonly options: EmbeddingLayerOptions = {}) {
    super();
    check(Number.isInteger(numEmbeddings) && numEmbeddings > 0 && Number.isInteger(embeddingDim) && embeddingDim > 0, 'Embedding', () =>
      `numEmbeddings and embeddingDim must be positive integers, got ${numEmbeddings} and ${embeddingDim}.`);
    this.weight = new Parameter(zeros([numEmbeddings, embeddingDim], { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend }));
    normal_(this.weight, 0, 1, options.generator);
    if (options.paddingIdx !== undefined) {
      // The padding row starts at zero (and receives no gradient).
      const row = this.weight.at(options.paddingIdx < 0 ? options.paddingIdx + numEmbeddings : options.paddingIdx);
      assignValues(row, new Float64Array(embeddingDim));
    }
  }

  override forward(indices: Tensor): Tensor {
    return embedding(indices, this.weight, this.options.paddingIdx !== undefined ? { paddingIdx: this.options.paddingIdx } : {});
  }
}
