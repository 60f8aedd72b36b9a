// ONNX gather/scatter and selection operators: Gather*, Scatter*, Compress, NonZero, Unique, ...

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
