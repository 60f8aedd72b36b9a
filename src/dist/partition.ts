// How a vector of any length is cut into one block per rank: the first (n mod p) blocks get one
// element more. Blocks are contiguous and in rank order.

export interface Blocks {
  readonly counts: readonly number[];
  readonly offsets: readonly number[];
  readonly total: number;
}

export function blocksFromCounts(counts: readonly number[]): Blocks {
  const offsets: number[] = [];
  let total = 0;
  for (const c of counts) {
    offsets.push(total);
    total += c;
  }
  return { counts, offsets, total };
}

export function evenBlocks(length: number, parts: number): Blocks {
  const base = Math.floor(length / parts);
  const extra = length % parts;
  const counts: number[] = [];
  for (let i = 0; i < parts; i++) counts.push(base + (i < extra ? 1 : 0));
  return blocksFromCounts(counts);
}

/** Element range [start, end) covered by blocks [first, last). */
export function blockRange(blocks: Blocks, first: number, last: number): [number, number] {
  const start = blocks.offsets[first] ?? blocks.total;
  const end = last >= blocks.counts.length ? blocks.total : blocks.offsets[last]!;
  return [start, end];
}

export function checkCounts(counts: readonly number[], parts: number, what: string): Blocks {
  if (counts.length !== parts || counts.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new RangeError(
      `${what}: counts must list one non-negative integer per rank of the group (${parts}), got [${counts.join(', ')}]`,
    );
  }
  return blocksFromCounts(counts);
}
