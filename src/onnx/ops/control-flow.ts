// ONNX control flow: If, Loop, Scan.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
