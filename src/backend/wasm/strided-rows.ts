// Turns an N-d strided elementwise operation into as few "rows" as possible: dimensions are
// dropped when of size 1 and merged when every operand walks them as one (stride[outer] ==
// stride[inner] × size[inner]). A contiguous tensor becomes one row; x[B, N] + bias[N] becomes
// B rows whose bias operand restarts every row.

export interface RowPlan {
  /** Length of each row (the innermost merged dimension). */
  readonly rowLength: number;
  /** Per operand, its element stride along the row. */
  readonly innerStrides: readonly number[];
  /** Outer dimensions (outermost first) and each operand's stride along them. */
  readonly outerShape: readonly number[];
  readonly outerStrides: readonly (readonly number[])[];
}

/**
 * Collapses `shape` for several operands given their strides (one array per operand, same rank
 * as `shape`).
 */
export function planRows(shape: readonly number[], strides: readonly (readonly number[])[]): RowPlan {
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (size === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, o) => st[o]![last] === s[d]! * size)) {
      dims[last] = dims[last]! * size;
      strides.forEach((s, o) => { st[o]![last] = s[d]!; });
    } else {
      dims.push(size);
      strides.forEach((s, o) => st[o]!.push(s[d]!));
    }
  }
  if (dims.length === 0) {
    // A single element (rank 0, or all sizes 1, or size 0 handled by the caller).
    return { rowLength: shape.includes(0) ? 0 : 1, innerStrides: strides.map(() => 1), outerShape: [], outerStrides: strides.map(() => []) };
  }
  const r = dims.length - 1;
  return {
    rowLength: dims[r]!,
    innerStrides: st.map((s) => s[r]!),
    outerShape: dims.slice(0, r),
    outerStrides: st.map((s) => s.slice(0, r)),
  };
}

/** Calls `fn(offsets)` with each operand's element offset at the start of every row. */
export function forEachRow(plan: RowPlan, baseOffsets: readonly number[], fn: (offsets: readonly number[]) => void): void {
  const { outerShape, outerStrides } = plan;
  const operands = baseOffsets.length;
  const offsets = [...baseOffsets];
  const rank = outerShape.length;
  if (plan.rowLength === 0) return;
  if (rank === 0) {
    fn(offsets);
    return;
  }
  if (outerShape.includes(0)) return;
  const index = new Array<number>(rank).fill(0);
  for (;;) {
    fn(offsets);
    // Odometer increment over the outer dimensions, innermost first.
    let d = rank - 1;
    for (; d >= 0; d--) {
      index[d]!++;
      for (let o = 0; o < operands; o++) offsets[o]! += outerStrides[o]![d]!;
      if (index[d]! < outerShape[d]!) break;
      for (let o = 0; o < operands; o++) offsets[o]! -= outerStrides[o]![d]! * outerShape[d]!;
      index[d] = 0;
    }
    if (d < 0) return;
  }
}
