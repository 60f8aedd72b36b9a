// pixelShuffle and pixelUnshuffle (sub-pixel convolution, Shi et al. 2016): channel blocks of r²
// become r×r spatial blocks and back. Each is a reshape, a permute and a reshape (views where the
// layout allows, one copy otherwise), so gradients are the inverse rearrangement.
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { permute, reshape } from '../shape.js';

function checkFactor(op: string, name: string, r: number): void {
  check(Number.isInteger(r) && r > 0, op, () => `${name} must be a positive integer, got ${r}.`);
}

/** [*, C·r², H, W] → [*, C, H·r, W·r] (torch.nn.functional.pixel_shuffle). */
export function pixelShuffle(x: Tensor, upscaleFactor: number): Tensor {
  const op = 'pixelShuffle';
  checkFactor(op, 'upscaleFactor', upscaleFactor);
  check(x.rank >= 3, op, () => `expects an input of rank >= 3 ([*, C, H, W]), got ${fmtShape(x.shape)}.`);
  const r = upscaleFactor;
  const lead = x.shape.slice(0, -3);
  const [c, h, w] = x.shape.slice(-3) as [number, number, number];
  check(c % (r * r) === 0, op, () => `the channel axis (size ${c}) of ${fmtShape(x.shape)} must be divisible by upscaleFactor² = ${r * r}.`);
  const k = lead.length;
  const blocks = reshape(x, [...lead, c / (r * r), r, r, h, w]);
  // [*, C, r_h, r_w, H, W] → [*, C, H, r_h, W, r_w]
  const moved = permute(blocks, [...lead.keys(), k, k + 3, k + 1, k + 4, k + 2]);
  return reshape(moved, [...lead, c / (r * r), h * r, w * r]);
}

/** [*, C, H·r, W·r] → [*, C·r², H, W], the inverse of pixelShuffle. */
export function pixelUnshuffle(x: Tensor, downscaleFactor: number): Tensor {
  const op = 'pixelUnshuffle';
  checkFactor(op, 'downscaleFactor', downscaleFactor);
  check(x.rank >= 3, op, () => `expects an input of rank >= 3 ([*, C, H, W]), got ${fmtShape(x.shape)}.`);
  const r = downscaleFactor;
  const lead = x.shape.slice(0, -3);
  const [c, h, w] = x.shape.slice(-3) as [number, number, number];
  check(h % r === 0 && w % r === 0, op, () => `height ${h} and width ${w} of ${fmtShape(x.shape)} must be divisible by downscaleFactor ${r}.`);
  const k = lead.length;
  const blocks = reshape(x, [...lead, c, h / r, r, w / r, r]);
  // [*, C, H', r_h, W', r_w] → [*, C, r_h, r_w, H', W']
  const moved = permute(blocks, [...lead.keys(), k, k + 2, k + 4, k + 1, k + 3]);
  return reshape(moved, [...lead, c * r * r, h / r, w / r]);
}
