// The NN ops are composites, so they run on any backend (its own kernels or the cpu fallback):
// a small network's loss and gradients agree between the cpu and wasm backends in float32.
import { test } from 'node:test';
import * as t from '../../../src/index.js';
import '../../../src/backend/wasm/backend.js';
import { assertClose } from './helpers.js';

function lossAndGrads(backend: string): t.Tensor[] {
  const g = new t.Generator(3);
  const x = t.randn([2, 4, 9, 9], { backend, generator: g, requiresGrad: true });
  const w = t.randn([6, 2, 3, 3], { backend, generator: g, requiresGrad: true });
  const emb = t.randn([5, 6], { backend, generator: g, requiresGrad: true });
  const target = t.tensor([1, 4], { dtype: 'int32', backend });
  let h = t.conv2d(x, w, { padding: 1, stride: 2, groups: 2 });                     // [2, 6, 5, 5]
  h = t.avgPool2d(t.maxPool2d(h, 2, { ceilMode: true }), 2, { ceilMode: true, countIncludePad: false }); // [2, 6, 2, 2]
  h = t.adaptiveAvgPool2d(t.batchNorm(h, undefined, undefined, { training: true }), 1).flatten(1); // [2, 6]
  const e = t.embedding(t.tensor([[0, 3], [4, 4]], { dtype: 'int32', backend }), emb).mean(1);
  const logits = t.layerNorm(h.add(e), [6]);
  const attn = t.scaledDotProductAttention(logits.unsqueeze(1), logits.unsqueeze(1), logits.unsqueeze(1).softmax(-1), { isCausal: true });
  const loss = t.crossEntropy(logits, target, { labelSmoothing: 0.1 }).add(attn.square().sum());
  loss.backward();
  return [loss, x.grad!, w.grad!, emb.grad!];
}

test('NN ops agree between the cpu and wasm backends (float32)', () => {
  const cpu = lossAndGrads('cpu');
  const wasm = lossAndGrads('wasm');
  const names = ['loss', 'dx', 'dw', 'demb'];
  wasm.forEach((v, i) => assertClose(t.tensor(v.data(), { shape: [...v.shape] }), cpu[i]!, `${names[i]} on wasm`));
});
