// ONNX recurrent layers: RNN, GRU, LSTM.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
