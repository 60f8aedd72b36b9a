// ONNX reductions: Reduce*, ArgMax/ArgMin, CumSum, TopK.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
