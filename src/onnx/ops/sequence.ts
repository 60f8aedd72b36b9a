// ONNX sequences and optionals: Sequence*, SplitToSequence, ConcatFromSequence, Optional*.

import { registerOnnxOp } from '../registry.js';

void registerOnnxOp;
