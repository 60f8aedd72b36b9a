// ONNX products: MatMul, Gemm, Einsum, Det.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
