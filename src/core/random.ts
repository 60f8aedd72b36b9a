// A seeded generator (like torch.manual_seed): same seed, same numbers, on every backend.
// xoshiro128** for uniform 32-bit integers; normals by the Box-Muller transform.
//
// Generators are stateful: the random primitives (randomUniform, randomNormal, randomInteger in
// ops/primitives.ts) name one in their attrs and advance it when their kernel runs, eagerly or in
// a replayed graph. Code that runs a function speculatively (tracing both branches of a cond, a
// replay abandoned at a failed guard) takes a snapshot of every live generator and restores it,
// so the stream a user sees is the one eager execution would have drawn.

let generatorCount = 0;
/** Every generator still reachable, for snapshots (weak: an unused generator can be collected). */
const liveGenerators = new Set<WeakRef<Generator>>();
const forgetGenerator = new FinalizationRegistry<WeakRef<Generator>>((ref) => liveGenerators.delete(ref));

/** Set once, by the class's static block: builds the default generator under its own label. */
let makeDefaultGenerator: () => Generator;

export class Generator {
  #s = new Uint32Array(4);
  #spare: number | undefined = undefined;
  #label: string;

  constructor(seed = 0x2545f491) {
    this.#label = `generator#${++generatorCount}`;
    const ref = new WeakRef(this);
    liveGenerators.add(ref);
    forgetGenerator.register(this, ref);
    this.manualSeed(seed);
  }

  static {
    makeDefaultGenerator = () => {
      const g = new Generator();
      g.#label = 'default';
      return g;
    };
  }

  /**
   * A name unique to this generator: 'default' or 'generator#<n>'. jit's signature of a generator
   * argument is this label, so a different generator object traces again.
   */
  get label(): string {
    return this.#label;
  }

  /** Graph printouts and attribute keys name the generator instead of showing '{}'. */
  toJSON(): string {
    return this.#label;
  }

  manualSeed(seed: number): this {
    // splitmix32 expands the seed into the 128-bit state (never all zero).
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b) >>> 0;
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (t ^ (t >>> 16)) >>> 0;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
    this.#spare = undefined;
    return this;
  }

  /** The full state, to save in a checkpoint and restore for exact resumption. */
  getState(): number[] {
    return [...this.#s, this.#spare ?? NaN];
  }
  setState(state: readonly number[]): void {
    for (let i = 0; i < 4; i++) this.#s[i] = state[i]! >>> 0;
    this.#spare = Number.isNaN(state[4]) ? undefined : state[4];
  }

  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5, lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * Fills `dst` with low + (high - low) * uniform(), drawn in order: the same values as calling
   * uniform() per element (stored into dst's element type), with the state held in locals, which
   * runs several times faster than a method call per draw (dropout draws one value per activation).
   */
  fillUniform(dst: Float32Array | Float64Array, low = 0, high = 1): void {
    const st = this.#s;
    let s0 = st[0]!, s1 = st[1]!, s2 = st[2]!, s3 = st[3]!;
    const span = high - low;
    for (let i = 0; i < dst.length; i++) {
      // Two steps of xoshiro128** (nextUint32), as uniform() takes: 27 high bits, then 26 low bits.
      let r = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
      let t = (s1 << 9) >>> 0;
      s2 = (s2 ^ s0) >>> 0; s3 = (s3 ^ s1) >>> 0; s1 = (s1 ^ s2) >>> 0; s0 = (s0 ^ s3) >>> 0;
      s2 = (s2 ^ t) >>> 0; s3 = rotl(s3, 11);
      const hi = r >>> 5;
      r = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
      t = (s1 << 9) >>> 0;
      s2 = (s2 ^ s0) >>> 0; s3 = (s3 ^ s1) >>> 0; s1 = (s1 ^ s2) >>> 0; s0 = (s0 ^ s3) >>> 0;
      s2 = (s2 ^ t) >>> 0; s3 = rotl(s3, 11);
      dst[i] = low + span * ((hi * 67108864 + (r >>> 6)) / 9007199254740992);
    }
    st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
  }

  /** Standard normal. */
  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [low, high). */
  integer(low: number, high: number): number {
    return low + Math.floor(this.uniform() * (high - low));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The default generator used by rand/randn/randint/dropout and shuffling. */
export const defaultGenerator = makeDefaultGenerator();

export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}

/** The states of every live generator at one moment; `restore()` puts them all back. */
export interface GeneratorSnapshot {
  restore(): void;
}

/**
 * Captures the state of every live generator (the default one and any `new Generator()`), so code
 * that runs user functions speculatively can undo their draws.
 */
export function snapshotGenerators(): GeneratorSnapshot {
  const saved: [Generator, number[]][] = [];
  for (const ref of liveGenerators) {
    const g = ref.deref();
    if (g !== undefined) saved.push([g, g.getState()]);
  }
  return { restore: () => { for (const [g, state] of saved) g.setState(state); } };
}
