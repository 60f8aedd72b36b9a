// ONNX neural-network operators: convolution, pooling, normalization, resampling.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
