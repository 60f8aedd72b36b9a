// Child process of bench/run.ts for TensorFlow.js (`--backend=cpu` or `--backend=wasm`): the same
// matmul cases and training steps as tessera's (bench/workloads/tessera-models.ts), written the
// way a TensorFlow.js user would: variables, tf.train.adam, optimizer.minimize. Layouts follow
// TensorFlow's conventions (NHWC images, [in, out] weights); the arithmetic is the same.
// Neither backend uses threads in Node (tfjs-backend-wasm's threaded build needs a browser's
// cross-origin isolation), so every record says threads = 1.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { emit, parseChildArgs, reasonOf, runMatmulCases, runTrainCase, type RecordBase, type TrainStep } from '../harness.js';
import { trainStepFlops, type BenchSpec } from '../spec.js';

/** PyTorch's default Linear/Conv initialisation range: U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
function param(shape: number[], fanIn: number, seed: number): tf.Variable {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.variable(tf.randomUniform(shape, -bound, bound, 'float32', seed));
}

function adamStep(spec: BenchSpec, vars: tf.Variable[], lossOf: () => tf.Scalar): TrainStep {
  const optimizer = tf.train.adam(spec.lr, 0.9, 0.999, 1e-8);
  return () => {
    const loss = optimizer.minimize(lossOf, true, vars);
    if (loss === null) throw new Error('optimizer.minimize returned no loss');
    const value = loss.dataSync()[0]!;
    loss.dispose();
    return value;
  };
}

function labels(batch: number, classes: number, seed: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.randomUniform([batch], 0, classes, 'int32', seed), classes).toFloat() as tf.Tensor2D);
}

function mlpStep(spec: BenchSpec): TrainStep {
  const { batch, sizes } = spec.mlp;
  const ws: tf.Variable[] = [], bs: tf.Variable[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    ws.push(param([sizes[i]!, sizes[i + 1]!], sizes[i]!, spec.seed + 2 * i));
    bs.push(param([sizes[i + 1]!], sizes[i]!, spec.seed + 2 * i + 1));
  }
  const x = tf.randomNormal([batch, sizes[0]!], 0, 1, 'float32', spec.seed);
  const y = labels(batch, sizes[sizes.length - 1]!, spec.seed);
  return adamStep(spec, [...ws, ...bs], () => tf.tidy(() => {
    let h: tf.Tensor2D = x as tf.Tensor2D;
    for (let i = 0; i < ws.length; i++) {
      h = tf.add(tf.matMul(h, ws[i]! as tf.Tensor2D), bs[i]!);
      if (i + 1 < ws.length) h = tf.relu(h);
    }
    return tf.losses.softmaxCrossEntropy(y, h) as tf.Scalar;
  }));
}

function cnnStep(spec: BenchSpec): TrainStep {
  const c = spec.cnn;
  const flat = c.c2 * (c.hw / 4) ** 2;
  const w1 = param([3, 3, 1, c.c1], 9, spec.seed), b1 = param([c.c1], 9, spec.seed + 1);
  const w2 = param([3, 3, c.c1, c.c2], 9 * c.c1, spec.seed + 2), b2 = param([c.c2], 9 * c.c1, spec.seed + 3);
  const w3 = param([flat, c.hidden], flat, spec.seed + 4), b3 = param([c.hidden], flat, spec.seed + 5);
  const w4 = param([c.hidden, c.classes], c.hidden, spec.seed + 6), b4 = param([c.classes], c.hidden, spec.seed + 7);
  const x = tf.randomNormal([c.batch, c.hw, c.hw, 1], 0, 1, 'float32', spec.seed) as tf.Tensor4D;
  const y = labels(c.batch, c.classes, spec.seed);
  return adamStep(spec, [w1, b1, w2, b2, w3, b3, w4, b4], () => tf.tidy(() => {
    const block = (input: tf.Tensor4D, w: tf.Variable, b: tf.Variable): tf.Tensor4D =>
      tf.maxPool(tf.relu(tf.add(tf.conv2d(input, w as tf.Tensor4D, 1, 'same'), b)) as tf.Tensor4D, 2, 2, 'valid');
    const h = block(block(x, w1, b1), w2, b2);
    const f = tf.relu(tf.add(tf.matMul(tf.reshape(h, [c.batch, flat]), w3 as tf.Tensor2D), b3));
    return tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(f, w4 as tf.Tensor2D), b4)) as tf.Scalar;
  }));
}

function layerNorm(x: tf.Tensor, g: tf.Variable, b: tf.Variable): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
}

/** GELU, tanh form (TensorFlow.js has no erf-based GELU op; the cost is the same). */
function gelu(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

function gptStep(spec: BenchSpec): TrainStep {
  const g = spec.gpt;
  const [B, T, d, H] = [g.batch, g.context, g.d, g.heads];
  const hd = d / H;
  let seed = spec.seed;
  const normal = (shape: number[], std: number): tf.Variable => tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed++));
  const zeros = (n: number): tf.Variable => tf.variable(tf.zeros([n]));
  const ones = (n: number): tf.Variable => tf.variable(tf.ones([n]));
  const wte = normal([g.vocab, d], 0.02), wpe = normal([T, d], 0.02);
  const blocks = Array.from({ length: g.layers }, () => ({
    ln1g: ones(d), ln1b: zeros(d), wqkv: normal([d, 3 * d], 0.02), bqkv: zeros(3 * d), wo: normal([d, d], 0.02), bo: zeros(d),
    ln2g: ones(d), ln2b: zeros(d), wfc: normal([d, 4 * d], 0.02), bfc: zeros(4 * d),
    wproj: normal([4 * d, d], 0.02 / Math.sqrt(2 * g.layers)), bproj: zeros(d),
  }));
  const lnfg = ones(d), lnfb = zeros(d);
  const vars = [wte, wpe, lnfg, lnfb, ...blocks.flatMap((b) => Object.values(b))];
  // Token embedding as oneHot(ids)·wte: TensorFlow.js-wasm has no kernel for the gradient of
  // tf.gather (UnsortedSegmentSum), and the product costs under 1% of the step's FLOPs.
  const tokens = tf.tidy(() => tf.oneHot(tf.reshape(tf.randomUniform([B, T], 0, g.vocab, 'int32', seed++), [B * T]), g.vocab).toFloat() as tf.Tensor2D);
  const y = labels(B * T, g.vocab, seed++);
  // Additive causal mask: 0 on and below the diagonal, -1e9 above.
  const mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9));
  const heads = (m: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(m, [B, T, H, hd]), [0, 2, 1, 3]);
  return adamStep(spec, vars, () => tf.tidy(() => {
    let x = tf.reshape(tf.add(tf.reshape(tf.matMul(tokens, wte as tf.Tensor2D), [B, T, d]), wpe), [B * T, d]);
    for (const b of blocks) {
      const qkv = tf.add(tf.matMul(layerNorm(x, b.ln1g, b.ln1b) as tf.Tensor2D, b.wqkv as tf.Tensor2D), b.bqkv);
      const [q, k, v] = tf.split(qkv, 3, 1);
      const scores = tf.add(tf.mul(tf.matMul(heads(q!), heads(k!), false, true), 1 / Math.sqrt(hd)), mask);
      const att = tf.matMul(tf.softmax(scores), heads(v!));
      const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, d]) as tf.Tensor2D;
      x = tf.add(x, tf.add(tf.matMul(merged, b.wo as tf.Tensor2D), b.bo));
      const hidden = gelu(tf.add(tf.matMul(layerNorm(x, b.ln2g, b.ln2b) as tf.Tensor2D, b.wfc as tf.Tensor2D), b.bfc));
      x = tf.add(x, tf.add(tf.matMul(hidden as tf.Tensor2D, b.wproj as tf.Tensor2D), b.bproj));
    }
    const logits = tf.matMul(layerNorm(x, lnfg, lnfb) as tf.Tensor2D, wte as tf.Tensor2D, false, true);
    return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
  }));
}

async function main(): Promise<void> {
  const args = parseChildArgs();
  const backend = args.backend ?? 'wasm';
  if (!(await tf.setBackend(backend))) throw new Error(`TensorFlow.js could not start its '${backend}' backend`);
  await tf.ready();
  const base: RecordBase = { library: `tfjs-${backend}`, backend, threads: 1 };
  if (args.threads !== 1) {
    emit({ ...base, workload: args.group, case: args.group === 'matmul' ? 'all' : args.group, status: 'skipped',
      reason: `TensorFlow.js's ${backend} backend runs one thread in Node` });
    return;
  }
  if (args.group === 'matmul') {
    await runMatmulCases(args.spec, base, (c) => {
      const a = tf.randomNormal([c.m, c.k], 0, 1, 'float32', 1) as tf.Tensor2D;
      const b = tf.randomNormal([c.k, c.n], 0, 1, 'float32', 2) as tf.Tensor2D;
      // Both backends compute synchronously when the op is called; dispose frees the result.
      return { run: () => tf.matMul(a, b).dispose(), dispose: () => { a.dispose(); b.dispose(); } };
    });
    return;
  }
  const build = { mlp: mlpStep, cnn: cnnStep, gpt: gptStep }[args.group];
  await runTrainCase(args.spec, base, args.group, trainStepFlops(args.spec, args.group), () => build(args.spec));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`tfjs bench child: ${reasonOf(e)}\n`);
    process.exit(1);
  },
);
