// ONNX operators that make tensors: Constant, ConstantOfShape, Range, EyeLike, OneHot, ...

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
