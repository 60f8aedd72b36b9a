// A map from heap addresses to positive numbers (block sizes, block starts) for the allocator.
//
// Why not a plain Map: an allocator reuses the same addresses over and over (a tensor freed and
// the next one of its size class taking its block), and V8's Map is slow under that pattern.
// Deleting a key leaves a dead entry in its hash bucket's chain until the table is next rebuilt,
// and setting the key again adds a new entry to the same chain, so each delete + set of one key
// walks a chain that grows by one entry per cycle. With 80k entries a delete + set took ~26 µs
// instead of ~0.15 µs, which made a 4-element add 5-12x slower while many tensors were alive.
// Here a deleted key keeps its entry with the value 0 (so setting it again updates that entry),
// and the map is rebuilt without such entries once they outnumber the live ones.

/** Dead entries tolerated beyond twice the live ones before a rebuild. */
const SLACK = 1024;

export class AddressMap {
  private map = new Map<number, number>();
  private live = 0;

  /** The value at `key`, or undefined. */
  get(key: number): number | undefined {
    const v = this.map.get(key);
    return v === undefined || v === 0 ? undefined : v;
  }

  /** Sets `key` to `value` (> 0). */
  set(key: number, value: number): void {
    const old = this.map.get(key);
    if (old === undefined || old === 0) this.live++;
    this.map.set(key, value);
  }

  delete(key: number): void {
    const old = this.map.get(key);
    if (old === undefined || old === 0) return;
    this.live--;
    this.map.set(key, 0);
    if (this.map.size > 2 * this.live + SLACK) this.rebuild();
  }

  /** Number of keys with a value. */
  get size(): number {
    return this.live;
  }

  *values(): IterableIterator<number> {
    for (const v of this.map.values()) if (v !== 0) yield v;
  }

  private rebuild(): void {
    const next = new Map<number, number>();
    for (const [k, v] of this.map) if (v !== 0) next.set(k, v);
    this.map = next;
  }
}
