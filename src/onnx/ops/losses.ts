// ONNX losses: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
