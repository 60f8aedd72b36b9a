// ONNX quantization operators: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, ...

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
