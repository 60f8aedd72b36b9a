// ONNX activations and the softmax family (Softmax, LogSoftmax, Hardmax).

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
