// Export a small CNN to ONNX and check the file in onnxruntime, like torch.onnx.export.
// Run: npx tsx examples/onnx-export.ts [out.onnx]   (default /tmp/tessera-cnn.onnx)
//
// The CNN (random weights, seeded) classifies 1×28×28 images: two Conv2d + ReLU + MaxPool2d
// stages, then Flatten and Linear. The exported model takes images [batch, 1, 28, 28] for any
// batch (dynamicAxes, like torch's dynamic_axes; the other dims are the example's) and returns the
// logits [batch, 10]; onnxruntime runs it at the example's batch of 4 and at 9.
import { writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { manualSeed, nn, noGrad, randn, onnx } from '../src/index.js';
import { decodeModel, elemTypeName } from '../src/onnx/proto.js';

const path = process.argv[2] ?? '/tmp/tessera-cnn.onnx';
manualSeed(0);
const model = new nn.Sequential(
  new nn.Conv2d(1, 8, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
  new nn.Conv2d(8, 16, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
  new nn.Flatten(), new nn.Linear(16 * 7 * 7, 10),
).eval(); // eval(): no dropout/batch statistics in the exported graph
const x = randn([4, 1, 28, 28]);

const bytes = onnx.exportOnnx((images) => model.call(images), [x], {
  module: model, inputNames: ['images'], outputNames: ['logits'], dynamicAxes: { images: { 0: 'batch' } },
});
writeFileSync(path, bytes);
console.log(`wrote ${path} (${bytes.length} bytes)`);

const graph = decodeModel(bytes).graph;
const describe = (v: (typeof graph.inputs)[number]): string =>
  v.type?.kind === 'tensor' ? `${v.name}: ${elemTypeName(v.type.elemType)} [${(v.type.shape ?? []).join(', ')}]` : v.name;
console.log(`inputs:  ${graph.inputs.map(describe).join(', ')}`);
console.log(`outputs: ${graph.outputs.map(describe).join(', ')}`);
console.log(`nodes:   ${graph.nodes.map((n) => n.opType).join(' → ')}`);
console.log(`initializers: ${graph.initializers.map((i) => i.name).join(', ')}`);

const session = await ort.InferenceSession.create(bytes);
for (const images of [x, randn([9, 1, 28, 28])]) {
  const { logits } = await session.run({ images: new ort.Tensor('float32', images.data() as Float32Array, [...images.shape]) });
  const expected = noGrad(() => model.call(images)).data();
  const got = logits!.data as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
  console.log(`batch ${images.shape[0]}: logits [${logits!.dims.join(', ')}], max |onnxruntime − tessera| ${maxDiff.toExponential(2)}`);
}
