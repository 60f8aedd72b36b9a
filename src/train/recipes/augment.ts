// Random translations of images (data augmentation) that stay exactly reproducible: the shift of record
// i in epoch e is drawn from a generator seeded with (seed, e, i), so a resumed run sees the same
// images as an uninterrupted one, whatever order batches are built in.
import type { Tensor } from '../../core/tensor.js';
import type { Dataset } from '../../data/dataset.js';
import type { ImageSet } from '../../data/datasets.js';
import { mixSeed, SeededRandom } from '../../data/random.js';
import { fromValues } from '../../ops/creation.js';
import { reshape } from '../../ops/shape.js';

export class ShiftedImages implements Dataset<Tensor[], Tensor[]> {
  readonly length: number;

  /**
   * @param maxShift largest translation in pixels along each axis (0 disables augmentation)
   * @param epochOf the epoch being built (the loader's), which varies the shifts between epochs
   */
  constructor(
    readonly set: ImageSet,
    readonly layout: 'nchw' | 'flat',
    readonly maxShift: number,
    readonly seed: number,
    readonly epochOf: () => number,
  ) {
    this.length = set.count;
  }

  /** One record: [image without the batch dimension, scalar label]. */
  get(index: number): Tensor[] {
    return this.getBatch(Int32Array.of(index)).map((t) => reshape(t, t.shape.slice(1)));
  }

  getBatch(indices: Int32Array): Tensor[] {
    const { height: h, width: w, images, labels } = this.set;
    const pixels = h * w;
    const x = new Float32Array(indices.length * pixels);
    const y = new Int32Array(indices.length);
    const epoch = this.epochOf();
    const span = 2 * this.maxShift + 1;
    for (let b = 0; b < indices.length; b++) {
      const r = indices[b]!;
      if (!(r >= 0 && r < this.set.count)) throw new Error(`ShiftedImages: index ${r} is outside [0, ${this.set.count}).`);
      y[b] = labels[r]!;
      let dx = 0, dy = 0;
      if (this.maxShift > 0) {
        const rng = new SeededRandom(mixSeed(this.seed, epoch, r));
        dx = rng.nextInt(span) - this.maxShift;
        dy = rng.nextInt(span) - this.maxShift;
      }
      const src = r * pixels, dst = b * pixels;
      for (let i = 0; i < h; i++) {
        const si = i - dy;
        if (si < 0 || si >= h) continue;
        for (let j = 0; j < w; j++) {
          const sj = j - dx;
          if (sj >= 0 && sj < w) x[dst + i * w + j] = images[src + si * w + sj]! / 255;
        }
      }
    }
    const shape = this.layout === 'nchw' ? [indices.length, 1, h, w] : [indices.length, pixels];
    return [fromValues(x, shape, 'float32'), fromValues(y, [indices.length], 'int32')];
  }
}
