// From an ImageSet (bytes) to tensors a model trains on.

import { fromValues } from '../ops/creation.js';
import { TensorDataset } from './dataset.js';
import type { ImageSet } from './datasets.js';

export interface ImageTensorOptions {
  /** 'nchw' (default): images as [count, 1, height, width], for convolutions; 'flat': [count, height*width]. */
  layout?: 'nchw' | 'flat';
  /** Pixels are mapped to (byte / 255 - mean) / std. Defaults 0 and 1 (values in [0, 1]). */
  mean?: number;
  std?: number;
  backend?: string;
}

/** A TensorDataset of [images (float32), labels (int32)] from an ImageSet. */
export function imageTensorDataset(set: ImageSet, options: ImageTensorOptions = {}): TensorDataset {
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!(std > 0)) throw new Error(`imageTensorDataset: std ${std} must be positive.`);
  const pixels = new Float32Array(set.images.length);
  const scale = 1 / (255 * std);
  const shift = mean / std;
  for (let i = 0; i < pixels.length; i++) pixels[i] = set.images[i]! * scale - shift;
  const shape = (options.layout ?? 'nchw') === 'nchw' ? [set.count, 1, set.height, set.width] : [set.count, set.height * set.width];
  const opts = options.backend === undefined ? {} : { backend: options.backend };
  const images = fromValues(pixels, shape, 'float32', opts);
  const labels = fromValues(Int32Array.from(set.labels), [set.count], 'int32', opts);
  return new TensorDataset([images, labels], opts);
}
