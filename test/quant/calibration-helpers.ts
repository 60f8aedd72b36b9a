// Shared by the calibrated-rounding tests (gptq.test.ts, awq.test.ts): seeded inputs independent of
// the library's generator, the error measure both methods minimise, and the small model their
// whole-model tests quantize.
import { nn, type Tensor } from '../../src/index.js';

/** A seeded stream of standard normal numbers (Box-Muller on an LCG), independent of the library's generator. */
export function normals(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** ‖y − ŷ‖² / ‖y‖²: a layer's output error relative to its output. */
export function relativeError(y: ArrayLike<number>, yHat: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < y.length; i++) { num += (y[i]! - yHat[i]!) ** 2; den += y[i]! ** 2; }
  return num / den;
}

/** Linear 20→32, ReLU, Linear 32→16, ReLU, Linear 16→4 (no bias): three layers quantized in call order. */
export class CalibrationNet extends nn.Module {
  body = new nn.Sequential(new nn.Linear(20, 32), new nn.ReLU(), new nn.Linear(32, 16));
  head = new nn.Linear(16, 4, { bias: false });
  override forward(x: Tensor): Tensor {
    return this.head.call(this.body.call(x).relu());
  }
}
