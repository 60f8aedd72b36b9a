// ONNX shape and layout operators: Shape, Reshape, Transpose, Concat, Split, Slice, Squeeze, ...

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
