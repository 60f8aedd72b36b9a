// Child process of bench/run.ts for jax-js (`@jax-js/jax`, its wasm device): the same matmul cases
// and training steps as tessera's, written as a jax user would: a pure loss over a parameter
// pytree, valueAndGrad, and Adam's update (torch.optim.Adam's formula, written out as
// @jax-js/optax's adam does) all inside one jit-compiled step. jax-js arrays are
// reference-counted: every function consumes its arguments, `.ref` keeps one for another use.
// jax-js starts worker threads only where the Web Worker API exists, which Node 20 lacks, so it
// runs one thread here and every record says so.

import { blockUntilReady, defaultDevice, init, jit, lax, nn, numpy as np, tree, valueAndGrad } from '@jax-js/jax';
import { emit, parseChildArgs, reasonOf, runMatmulCases, runTrainCase, type RecordBase, type TrainStep } from '../harness.js';
import { trainStepFlops, type BenchSpec } from '../spec.js';

type JArray = np.Array;
type Params = Record<string, JArray>;
type LossFn = (p: Params, x: JArray, y: JArray) => JArray;

/** Seeded values from a small LCG: the benchmark needs fixed data, not jax's PRNG. */
function seeded(count: number, seed: number, draw: (u: number, next: () => number) => number): Float32Array {
  let s = (seed * 2654435761 + 12345) >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = draw(next(), next);
  return out;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function uniformArray(shape: number[], bound: number, seed: number): JArray {
  return np.array(seeded(sizeOf(shape), seed, (u) => (2 * u - 1) * bound)).reshape(shape);
}

function normalArray(shape: number[], std: number, seed: number): JArray {
  return np.array(seeded(sizeOf(shape), seed, (u, next) => std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next()))).reshape(shape);
}

/** One-hot float labels [n, classes] for seeded random classes. */
function oneHotLabels(n: number, classes: number, seed: number): JArray {
  const classOf = seeded(n, seed, (u) => Math.min(classes - 1, Math.floor(u * classes)));
  const out = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) out[i * classes + classOf[i]!] = 1;
  return np.array(out).reshape([n, classes]);
}

/** Mean cross-entropy of logits [n, classes] against one-hot labels. */
function crossEntropy(logits: JArray, onehot: JArray): JArray {
  return nn.logSoftmax(logits, -1).mul(onehot).sum(-1).mean().neg();
}

/** PyTorch's default Linear/Conv initialisation: U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
function linearParams(p: Params, name: string, fanIn: number, wShape: number[], outDim: number, seed: number): void {
  const bound = 1 / Math.sqrt(fanIn);
  p[`w${name}`] = uniformArray(wShape, bound, seed);
  p[`b${name}`] = uniformArray([outDim], bound, seed + 1000);
}

interface Model { params: Params; x: JArray; y: JArray; loss: LossFn }

function mlpModel(spec: BenchSpec): Model {
  const { batch, sizes } = spec.mlp;
  const params: Params = {};
  for (let i = 0; i + 1 < sizes.length; i++) linearParams(params, String(i), sizes[i]!, [sizes[i]!, sizes[i + 1]!], sizes[i + 1]!, spec.seed + i);
  const layers = sizes.length - 1;
  return {
    params,
    x: normalArray([batch, sizes[0]!], 1, spec.seed),
    y: oneHotLabels(batch, sizes[layers]!, spec.seed),
    loss: (p, x, y) => {
      let h = x;
      for (let i = 0; i < layers; i++) {
        h = np.matmul(h, p[`w${i}`]!).add(p[`b${i}`]!);
        if (i + 1 < layers) h = nn.relu(h);
      }
      return crossEntropy(h, y);
    },
  };
}

/** Max pooling 2x2, stride 2 over the last two axes (jax's nn.max_pool is lax.reduce_window). */
function maxPool2(x: JArray): JArray {
  return lax.reduceWindow(x, (w: JArray) => np.max(w), [2, 2], [2, 2]);
}

function cnnModel(spec: BenchSpec): Model {
  const c = spec.cnn;
  const flat = c.c2 * (c.hw / 4) ** 2;
  const params: Params = {};
  linearParams(params, '1', 9, [c.c1, 1, 3, 3], c.c1, spec.seed);
  linearParams(params, '2', 9 * c.c1, [c.c2, c.c1, 3, 3], c.c2, spec.seed + 1);
  linearParams(params, '3', flat, [flat, c.hidden], c.hidden, spec.seed + 2);
  linearParams(params, '4', c.hidden, [c.hidden, c.classes], c.classes, spec.seed + 3);
  return {
    params,
    x: normalArray([c.batch, 1, c.hw, c.hw], 1, spec.seed),
    y: oneHotLabels(c.batch, c.classes, spec.seed),
    loss: (p, x, y) => {
      let h = maxPool2(nn.relu(lax.conv(x, p.w1!, [1, 1], 'SAME').add(p.b1!.reshape([1, c.c1, 1, 1]))));
      h = maxPool2(nn.relu(lax.conv(h, p.w2!, [1, 1], 'SAME').add(p.b2!.reshape([1, c.c2, 1, 1]))));
      const f = nn.relu(np.matmul(h.reshape([c.batch, flat]), p.w3!).add(p.b3!));
      return crossEntropy(np.matmul(f, p.w4!).add(p.b4!), y);
    },
  };
}

function layerNorm(x: JArray, g: JArray, b: JArray): JArray {
  return nn.standardize(x, -1, { epsilon: 1e-5 }).mul(g).add(b);
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above. */
function causalMask(T: number): JArray {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  return np.array(m).reshape([T, T]);
}

/**
 * softmax(q·kᵀ/√h + mask)·v on [B, heads, T, h]. Written out because nn.dotProductAttention goes
 * through einsum, whose parser uses iterator helpers (`matchAll(...).map`) that Node 20 lacks.
 */
function causalAttention(q: JArray, k: JArray, v: JArray): JArray {
  const [T, h] = [q.shape[2]!, q.shape[3]!];
  const scores = np.matmul(q, k.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(h)).add(causalMask(T));
  return np.matmul(nn.softmax(scores, -1), v);
}

function gptModel(spec: BenchSpec): Model {
  const g = spec.gpt;
  const [B, T, d, H] = [g.batch, g.context, g.d, g.heads];
  let seed = spec.seed;
  const params: Params = { wte: normalArray([g.vocab, d], 0.02, seed++), wpe: normalArray([T, d], 0.02, seed++) };
  params.lnfg = np.ones([d]);
  params.lnfb = np.zeros([d]);
  for (let l = 0; l < g.layers; l++) {
    Object.assign(params, {
      [`ln1g${l}`]: np.ones([d]), [`ln1b${l}`]: np.zeros([d]),
      [`wqkv${l}`]: normalArray([d, 3 * d], 0.02, seed++), [`bqkv${l}`]: np.zeros([3 * d]),
      [`wo${l}`]: normalArray([d, d], 0.02, seed++), [`bo${l}`]: np.zeros([d]),
      [`ln2g${l}`]: np.ones([d]), [`ln2b${l}`]: np.zeros([d]),
      [`wfc${l}`]: normalArray([d, 4 * d], 0.02, seed++), [`bfc${l}`]: np.zeros([4 * d]),
      [`wproj${l}`]: normalArray([4 * d, d], 0.02 / Math.sqrt(2 * g.layers), seed++), [`bproj${l}`]: np.zeros([d]),
    });
  }
  const ids = seeded(B * T, seed++, (u) => Math.min(g.vocab - 1, Math.floor(u * g.vocab)));
  return {
    params,
    x: np.array(Int32Array.from(ids), { dtype: np.int32 }).reshape([B, T]),
    y: oneHotLabels(B * T, g.vocab, seed++),
    loss: (p, x, y) => {
      // The head is tied to the token embedding: wte is used twice.
      let h = np.take(p.wte!.ref, x, 0).add(p.wpe!);
      for (let l = 0; l < g.layers; l++) {
        const qkv = np.matmul(layerNorm(h.ref, p[`ln1g${l}`]!, p[`ln1b${l}`]!), p[`wqkv${l}`]!).add(p[`bqkv${l}`]!);
        const [q, k, v] = np.split(qkv, 3, -1).map((a) => a.reshape([B, T, H, d / H]).transpose([0, 2, 1, 3]));
        const att = causalAttention(q!, k!, v!).transpose([0, 2, 1, 3]).reshape([B, T, d]);
        h = h.add(np.matmul(att, p[`wo${l}`]!).add(p[`bo${l}`]!));
        const hidden = nn.gelu(np.matmul(layerNorm(h.ref, p[`ln2g${l}`]!, p[`ln2b${l}`]!), p[`wfc${l}`]!).add(p[`bfc${l}`]!), { approximate: false });
        h = h.add(np.matmul(hidden, p[`wproj${l}`]!).add(p[`bproj${l}`]!));
      }
      const logits = np.matmul(layerNorm(h, p.lnfg!, p.lnfb!).reshape([B * T, d]), p.wte!.transpose());
      return crossEntropy(logits, y);
    },
  };
}

/** A jit-compiled step: loss and gradients, then Adam (betas 0.9/0.999, eps 1e-8) on every leaf. */
function adamStep(spec: BenchSpec, model: Model): TrainStep {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const step = jit((params: Params, m: Params, v: Params, x: JArray, y: JArray, stepSize: JArray, bc2Sqrt: JArray) => {
    const [loss, grads] = valueAndGrad(model.loss)(tree.ref(params), x, y);
    const p2: Params = {}, m2: Params = {}, v2: Params = {};
    for (const key of Object.keys(params)) {
      const gk = (grads as Params)[key]!;
      m2[key] = m[key]!.mul(b1).add(gk.ref.mul(1 - b1));
      v2[key] = v[key]!.mul(b2).add(gk.ref.mul(gk).mul(1 - b2));
      const denom = np.sqrt(v2[key]!.ref).div(bc2Sqrt.ref).add(eps);
      p2[key] = params[key]!.sub(m2[key]!.ref.mul(stepSize.ref).div(denom));
    }
    stepSize.dispose();
    bc2Sqrt.dispose();
    return [loss, p2, m2, v2] as [JArray, Params, Params, Params];
  });
  let params = model.params;
  let m: Params = {}, v: Params = {};
  for (const [key, p] of Object.entries(params)) {
    m[key] = np.zeros(p.shape);
    v[key] = np.zeros(p.shape);
  }
  let t = 0;
  return async () => {
    t++;
    const stepSize = np.array(spec.lr / (1 - b1 ** t));
    const bc2Sqrt = np.array(Math.sqrt(1 - b2 ** t));
    const [loss, p2, m2, v2] = step(params, m, v, model.x.ref, model.y.ref, stepSize, bc2Sqrt);
    [params, m, v] = [p2, m2, v2];
    // Wait for the whole update (not just the loss) before the step counts as done.
    await blockUntilReady([p2, m2, v2]);
    return (await loss.data())[0]!;
  };
}

async function main(): Promise<void> {
  const args = parseChildArgs();
  const devices = await init('wasm');
  if (!devices.includes('wasm')) throw new Error(`jax-js could not start its wasm device (available: ${devices.join(', ')})`);
  defaultDevice('wasm');
  const base: RecordBase = { library: 'jax-js', backend: 'wasm', threads: 1 };
  if (args.threads !== 1) {
    emit({ ...base, workload: args.group, case: args.group === 'matmul' ? 'all' : args.group, status: 'skipped',
      reason: 'jax-js starts worker threads only through the Web Worker API, which Node 20 lacks' });
    return;
  }
  if (args.group === 'matmul') {
    const product = jit((a: JArray, b: JArray) => np.matmul(a, b));
    await runMatmulCases(args.spec, base, (c) => {
      const a = normalArray([c.m, c.k], 1, 1), b = normalArray([c.k, c.n], 1, 2);
      return {
        run: async () => {
          const out = product(a.ref, b.ref);
          await out.blockUntilReady();
          out.dispose();
        },
        dispose: () => { a.dispose(); b.dispose(); },
      };
    });
    return;
  }
  const build = { mlp: mlpModel, cnn: cnnModel, gpt: gptModel }[args.group];
  await runTrainCase(args.spec, base, args.group, trainStepFlops(args.spec, args.group), () => adamStep(args.spec, build(args.spec)));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`jax-js bench child: ${reasonOf(e)}\n`);
    process.exit(1);
  },
);
