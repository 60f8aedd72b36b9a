// ONNX interchange: `onnx.load(bytes)` runs ONNX models with tessera's ops (any backend, under
// jit, differentiable); `onnx.exportOnnx(fn, inputs)` writes a traced function as an ONNX model.
export { OnnxModel, load, type OnnxLoadOptions, type OnnxRunOptions, type OnnxValueInfo } from './model.js';
export { supportedOnnxOps as supportedOps, registerOnnxOp, type OnnxOpImpl, type OpResult } from './registry.js';
export { NodeContext } from './node-context.js';
export { type OnnxValue, type OnnxTensor, type OnnxSequence, type OnnxNone, onnxTensor } from './value.js';
export { ElemType, elemTypeName } from './proto.js';
export { exportOnnx, type ExportOnnxOptions } from './export.js';
export { encodeModel, type ModelDesc, type GraphDesc, type NodeDesc, type ValueDesc, type TensorDesc, type AttrDesc } from './encode.js';
export { sampleFeeds, type SampleFeedOptions } from './sample-feeds.js';
