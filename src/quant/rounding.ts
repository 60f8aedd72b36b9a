// Rounding as PyTorch's quantizers do it: std::nearbyint in the default rounding mode, i.e. round
// half to even (2.5 → 2, 3.5 → 4, -2.5 → -2). Half-away-from-zero would bias every tie outward;
// half-to-even keeps the mean error zero and matches torch.quantize_per_tensor bit for bit.

/** x rounded to the nearest integer, ties to the even one. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +inf
  // A tie rounded up to an odd integer goes back down to the even one.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
