// Rounding as PyTorch's quantizers do it: std::nearbyint in the default rounding mode, i.e. round
// half to even (2.5 → 2, 3.5 → 4, -2.5 → -2). Half-away-from-zero would bias every tie outward;
// half-to-even keeps the mean error zero and matches torch.quantize_per_tensor bit for bit.

// The kernels' rounding (backend/cpu/math.ts) is this one: the quantizers use it.
export { roundHalfEven } from '../backend/cpu/math.js';
