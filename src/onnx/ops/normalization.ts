// ONNX normalization operators: BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization, LRN, MeanVarianceNormalization.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
