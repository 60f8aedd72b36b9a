// One WebAssembly memory for the whole wasm backend, with an allocator over it. Tensor buffers,
// packing scratch and generated module bytes all live here, so every worker thread that
// instantiates a kernel over this memory sees the same data without copies.
//
// Allocator: segregated free lists with splitting and coalescing. Block sizes are multiples of
// 64 bytes (a cache line, and enough for v128 alignment); size classes are exact up to 512 B,
// then four classes per power of two (≤ 25% rounding waste). Bookkeeping lives in JS maps
// (address-map.ts), not in the wasm memory, so a kernel that writes out of bounds cannot corrupt the allocator.

import { AddressMap } from './address-map.js';

export const WASM_PAGE_BYTES = 65536;
/** Allocation granularity and alignment in bytes. */
export const BLOCK_ALIGN = 64;

export interface WasmHeapOptions {
  /** Initial size in bytes (rounded up to pages). Default 16 MiB. */
  initialBytes?: number;
  /**
   * Maximum size in bytes. Default 2 GiB: pointers then stay below 2^31, so generated code may
   * treat them as signed i32 without surprises.
   */
  maximumBytes?: number;
  /**
   * Use a shared memory (needed for worker threads). Default: true where SharedArrayBuffer
   * exists (Node, cross-origin-isolated pages), else false (single-threaded fallback).
   */
  shared?: boolean;
  /**
   * Called (synchronously, from alloc) each time the bytes in use pass a threshold that moves up
   * by `pressureStepBytes` plus half the bytes in use, on an allocation that no free block could
   * serve and that takes the heap's top past its highest point so far. JavaScript's garbage collector does not see
   * this memory, so tensors dropped without dispose() would otherwise wait for a collection that
   * the small JS heap never asks for; the embedder can trigger one here (node-gc.ts).
   */
  onPressure?: (stats: WasmHeapStats) => void;
  /** Default 64 MiB. */
  pressureStepBytes?: number;
}

export interface WasmHeapStats {
  /** Bytes in live blocks (block sizes, i.e. after rounding to the size class). */
  bytesInUse: number;
  /** Highest `bytesInUse` seen since creation or `resetPeak()`. */
  peakBytesInUse: number;
  blocksInUse: number;
  /** Bytes in free blocks waiting for reuse. */
  bytesFree: number;
  freeBlocks: number;
  /** End of the highest block ever handed out (free blocks at the top are given back to it). */
  heapTop: number;
  /** Current size of the WebAssembly memory in bytes. */
  memoryBytes: number;
}

const SUBCLASS_BITS = 2; // four size classes per power of two

/** Index of the largest size class whose size (in 64-byte units) is ≤ units. */
function floorClass(units: number): number {
  if (units < 8) return units;
  const e = 31 - Math.clz32(units);
  const sub = (units >>> (e - SUBCLASS_BITS)) & ((1 << SUBCLASS_BITS) - 1);
  return 8 + (e - 3) * (1 << SUBCLASS_BITS) + sub;
}

/** Size in 64-byte units of a size class. */
function classUnits(cls: number): number {
  if (cls < 8) return cls;
  const e = ((cls - 8) >> SUBCLASS_BITS) + 3;
  const sub = (cls - 8) & ((1 << SUBCLASS_BITS) - 1);
  return ((1 << SUBCLASS_BITS) + sub) * 2 ** (e - SUBCLASS_BITS);
}

/** Block size in units for a request: rounded up to a size class. */
function roundedUnits(units: number): number {
  const cls = floorClass(units);
  return classUnits(cls) === units ? units : classUnits(cls + 1);
}

export function sharedMemoryAvailable(): boolean {
  return typeof SharedArrayBuffer === 'function';
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  readonly maxPages: number;

  /** Live blocks: start → size in bytes. */
  private readonly live = new AddressMap();
  /** Free blocks: start → size, end → start (for coalescing with neighbours). */
  private readonly freeByStart = new AddressMap();
  private readonly freeByEnd = new AddressMap();
  /**
   * Free block starts per floor size class, as stacks (the most recently freed block is reused
   * first, while its cache lines are warm). Entries are removed lazily: one whose block was taken
   * or merged since is skipped when popped (freeByStart no longer has it in this class). A Set
   * read from its first entry walks the holes that deletes leave at its front.
   */
  private readonly freeLists: number[][] = [];
  /** Free blocks per floor size class (freeLists' live entries). */
  private readonly freeCounts: number[] = [];
  private top = BLOCK_ALIGN; // address 0..63 stays unused so that 0 can mean "no buffer"
  private inUse = 0;
  private peak = 0;
  private cachedBuffer: ArrayBufferLike | undefined;
  private readonly onPressure: ((stats: WasmHeapStats) => void) | undefined;
  private readonly pressureStep: number;
  private nextPressure: number;
  /** The highest the top has been: growth below it reuses memory the program already had. */
  private highWater = BLOCK_ALIGN;
  private views: { u8: Uint8Array; i32: Int32Array; f32: Float32Array; f64: Float64Array } | undefined;

  constructor(options: WasmHeapOptions = {}) {
    const shared = options.shared ?? sharedMemoryAvailable();
    if (shared && !sharedMemoryAvailable()) {
      throw new Error('WasmHeap: shared memory requested but SharedArrayBuffer is unavailable here '
        + '(in a browser the page must be cross-origin isolated); pass shared: false');
    }
    const maximumBytes = options.maximumBytes ?? 2 ** 31;
    const initialBytes = options.initialBytes ?? 16 * 2 ** 20;
    if (!(maximumBytes > 0) || maximumBytes > 2 ** 32) {
      throw new RangeError(`WasmHeap: maximumBytes ${maximumBytes} must be in (0, 4 GiB]`);
    }
    const maxPages = Math.ceil(maximumBytes / WASM_PAGE_BYTES);
    const initialPages = Math.max(1, Math.ceil(initialBytes / WASM_PAGE_BYTES));
    if (initialPages > maxPages) {
      throw new RangeError(`WasmHeap: initialBytes ${initialBytes} exceeds maximumBytes ${maximumBytes}`);
    }
    this.shared = shared;
    this.maxPages = maxPages;
    this.onPressure = options.onPressure;
    this.pressureStep = options.pressureStepBytes ?? 64 * 2 ** 20;
    this.nextPressure = this.pressureStep;
    this.memory = shared
      ? new WebAssembly.Memory({ initial: initialPages, maximum: maxPages, shared: true })
      : new WebAssembly.Memory({ initial: initialPages, maximum: maxPages });
  }

  /** Bytes of the memory right now (grows, never shrinks). */
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  private refreshViews() {
    const buffer = this.memory.buffer;
    if (this.views === undefined || this.cachedBuffer !== buffer) {
      this.cachedBuffer = buffer;
      this.views = {
        u8: new Uint8Array(buffer), i32: new Int32Array(buffer), f32: new Float32Array(buffer), f64: new Float64Array(buffer),
      };
    }
    return this.views;
  }

  /** Views over the whole memory; re-fetch after any allocation, since growth replaces the buffer. */
  get u8(): Uint8Array { return this.refreshViews().u8; }
  get i32(): Int32Array { return this.refreshViews().i32; }
  get f32(): Float32Array { return this.refreshViews().f32; }
  get f64(): Float64Array { return this.refreshViews().f64; }

  /** Allocates at least `bytes` bytes aligned to 64 and returns the byte address. Contents are unspecified. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0) {
      throw new RangeError(`WasmHeap.alloc: size ${bytes} must be a non-negative integer number of bytes`);
    }
    const units = roundedUnits(Math.max(1, Math.ceil(bytes / BLOCK_ALIGN)));
    const size = units * BLOCK_ALIGN;
    const reused = this.takeFree(units);
    const ptr = reused ?? this.bump(size, bytes);
    this.live.set(ptr, size);
    this.inUse += size;
    if (this.inUse > this.peak) this.peak = this.inUse;
    // Only allocations that take the heap's top past its highest point so far raise an alert: a
    // program that frees what it uses (scopes, dispose) cycles through its free blocks, and
    // through the top region its frees hand back, and a forced collection on each such cycle (e.g.
    // every training step: ~55-110 ms per CNN step at 2 threads) cost more than the step's work
    // outside matmul. Tensors dropped without dispose() keep pushing the top up, and still alert.
    const newHighWater = this.top > this.highWater;
    if (newHighWater) this.highWater = this.top;
    if (reused === undefined && newHighWater && this.inUse >= this.nextPressure && this.onPressure !== undefined) {
      this.nextPressure = this.inUse + this.pressureStep + this.inUse / 2;
      this.onPressure(this.stats());
    }
    return ptr;
  }

  /** Returns a block to the allocator. */
  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) {
      throw new Error(`WasmHeap.free: ${ptr} is not the address of a live block (double free, or not from alloc())`);
    }
    this.live.delete(ptr);
    this.inUse -= size;
    // After a collection frees memory, the next alert comes one step above what remains.
    this.nextPressure = Math.min(this.nextPressure, this.inUse + this.pressureStep + this.inUse / 2);
    let start = ptr;
    let end = ptr + size;
    // Coalesce with a free neighbour on either side.
    const before = this.freeByEnd.get(start);
    if (before !== undefined) {
      this.removeFree(before);
      start = before;
    }
    const afterSize = this.freeByStart.get(end);
    if (afterSize !== undefined) {
      this.removeFree(end);
      end += afterSize;
    }
    if (end === this.top) {
      this.top = start; // give the tail back to the bump region
      return;
    }
    this.addFree(start, end - start);
  }

  /** Size in bytes of the live block at `ptr` (≥ the requested size). */
  blockSize(ptr: number): number {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`WasmHeap.blockSize: ${ptr} is not the address of a live block`);
    return size;
  }

  stats(): WasmHeapStats {
    let bytesFree = 0;
    for (const s of this.freeByStart.values()) bytesFree += s;
    return {
      bytesInUse: this.inUse,
      peakBytesInUse: this.peak,
      blocksInUse: this.live.size,
      bytesFree,
      freeBlocks: this.freeByStart.size,
      heapTop: this.top,
      memoryBytes: this.byteLength,
    };
  }

  resetPeak(): void {
    this.peak = this.inUse;
  }

  private addFree(start: number, size: number): void {
    this.freeByStart.set(start, size);
    this.freeByEnd.set(start + size, start);
    const cls = floorClass(size / BLOCK_ALIGN);
    const list = (this.freeLists[cls] ??= []);
    const count = (this.freeCounts[cls] = (this.freeCounts[cls] ?? 0) + 1);
    // Drop stale entries once they outnumber the live ones, so the stack stays O(free blocks).
    if (list.length >= 2 * count + 64) {
      const seen = new Set<number>();
      const live = list.filter((b) => this.isFreeIn(b, cls) && !seen.has(b) && seen.add(b) !== undefined);
      list.length = 0;
      list.push(...live);
    }
    list.push(start);
  }

  private removeFree(start: number): void {
    const size = this.freeByStart.get(start)!;
    this.freeByStart.delete(start);
    this.freeByEnd.delete(start + size);
    this.freeCounts[floorClass(size / BLOCK_ALIGN)]!--;
  }

  /** Whether `start` begins a free block of floor class `cls`. */
  private isFreeIn(start: number, cls: number): boolean {
    const size = this.freeByStart.get(start);
    return size !== undefined && floorClass(size / BLOCK_ALIGN) === cls;
  }

  /** A free block of at least `units` (a class size), split if larger; undefined if none. */
  private takeFree(units: number): number | undefined {
    for (let cls = floorClass(units); cls < this.freeLists.length; cls++) {
      if ((this.freeCounts[cls] ?? 0) === 0) continue;
      const list = this.freeLists[cls]!;
      let start = list.pop()!;
      while (!this.isFreeIn(start, cls)) start = list.pop()!;
      const size = this.freeByStart.get(start)!;
      this.removeFree(start);
      const want = units * BLOCK_ALIGN;
      if (size > want) this.addFree(start + want, size - want);
      return start;
    }
    return undefined;
  }

  private bump(size: number, requested: number): number {
    const ptr = this.top;
    const end = ptr + size;
    if (end > this.byteLength) {
      const maxBytes = this.maxPages * WASM_PAGE_BYTES;
      if (end > maxBytes) {
        throw new RangeError(`WasmHeap: out of memory allocating ${requested} bytes: ${this.inUse} bytes are in use `
          + `and the heap may not exceed ${maxBytes} bytes; dispose() unused tensors or raise maximumBytes`);
      }
      // Grow geometrically (≥ 1/8 of the current size) so that a sequence of allocations grows O(log n) times.
      const neededPages = Math.ceil((end - this.byteLength) / WASM_PAGE_BYTES);
      const currentPages = this.byteLength / WASM_PAGE_BYTES;
      const pages = Math.min(this.maxPages - currentPages, Math.max(neededPages, Math.ceil(currentPages / 8)));
      this.memory.grow(pages);
    }
    this.top = end;
    return ptr;
  }
}
