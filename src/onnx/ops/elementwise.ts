// ONNX elementwise operators: arithmetic with numpy broadcasting, math functions, comparisons and
// logic, over tessera's elementwise ops.

import * as ops from '../../ops/index.js';
import { registerOnnxOp } from '../registry.js';

registerOnnxOp('Add', (ctx) => [ops.add(ctx.tensor(0), ctx.tensor(1))]);
registerOnnxOp('Relu', (ctx) => [ops.relu(ctx.tensor(0))]);
registerOnnxOp('Identity', (ctx) => [ctx.value(0)]);
