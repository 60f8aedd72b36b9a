// int4 storage: two 4-bit values per byte, packed along the last axis.
//
// Nibble order: element 2i of a row goes in the LOW nibble of byte i, element 2i + 1 in the HIGH
// nibble (as torch.quint4x2 and most GPTQ/AWQ CPU kernels). Each row of the last axis is packed on
// its own: a row of K values takes ceil(K / 2) bytes, and when K is odd the last byte's high
// nibble is 0. Rows therefore start on byte boundaries, which is what a matmul kernel wants.
//
// Signed values (symmetric int4, [-7, 7], and -8 which quantize never produces) are stored as
// 4-bit two's complement (-1 → 0xF), so a kernel recovers them with a shift left by 4 and an
// arithmetic shift right by 4. Unsigned values (affine uint4, [0, 15]) are stored as they are.
import { TesseraError } from '../core/errors.js';

// Unpacking (and the row size) live with the kernels that decode int4 (backend/cpu/quantized-kernels.ts).
import { packedRowBytes } from '../backend/cpu/quantized-kernels.js';
export { packedRowBytes, unpackInt4 } from '../backend/cpu/quantized-kernels.js';

/**
 * Packs `rows` rows of `k` 4-bit values (signed in [-8, 7] or unsigned in [0, 15]) into
 * rows × ceil(k / 2) bytes, in the nibble order above.
 */
export function packInt4(values: ArrayLike<number>, rows: number, k: number): Uint8Array {
  if (values.length !== rows * k) {
    throw new TesseraError(`packInt4: ${values.length} values do not make ${rows} rows of ${k}; give rows × k values.`);
  }
  const rowBytes = packedRowBytes(k);
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    const src = r * k, dst = r * rowBytes;
    for (let j = 0; j < k; j++) {
      const v = values[src + j]!;
      if (!(v >= -8 && v <= 15) || !Number.isInteger(v)) {
        throw new TesseraError(`packInt4: value ${v} at row ${r}, column ${j} is not a 4-bit integer; int4 holds [-8, 7] (signed) or [0, 15] (unsigned).`);
      }
      const nibble = v & 0xf;
      out[dst + (j >>> 1)]! |= (j & 1) === 0 ? nibble : nibble << 4;
    }
  }
  return out;
}
