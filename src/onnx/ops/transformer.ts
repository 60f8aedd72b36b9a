// ONNX transformer operators of the newer opsets: Attention, RotaryEmbedding, RMSNormalization, Swish, SwiGLU, ...

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
