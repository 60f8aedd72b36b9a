// Seeded randomness for data order: shuffles and splits must be reproducible from a seed alone, on any
// machine, so that a resumed run sees the same batches as an uninterrupted one.

/**
 * A small, fast 32-bit generator (mulberry32) whose whole state is one uint32, so it can be saved and
 * restored exactly. Good enough for shuffling; not for cryptography.
 */
export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`SeededRandom: seed ${seed} is not a finite number; pass an integer.`);
    this.#state = mixSeed(seed);
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** The generator's state, to be given to `SeededRandom.fromState` for an exact continuation. */
  get state(): number {
    return this.#state;
  }

  static fromState(state: number): SeededRandom {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) {
      throw new Error(`SeededRandom.fromState: state ${state} is not a uint32; pass a value read from .state.`);
    }
    const r = new SeededRandom(0);
    r.#state = state;
    return r;
  }
}

/**
 * Hashes any number of integers (a seed, an epoch, ...) into one well-mixed uint32, so that nearby seeds
 * give unrelated streams (murmur3's finalizer applied per part).
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Fold the high bits in too, so seeds above 2^32 still differ.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const word of [lo, hi]) {
      h ^= word;
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates), determined by the generator. */
export function randomPermutation(n: number, random: SeededRandom): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`randomPermutation: n = ${n} must be a non-negative integer.`);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
