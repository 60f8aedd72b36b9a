// Tensor methods are the same ops as the functions (PyTorch-style x.op(...) and t.op(x, ...)).
import { it } from 'node:test';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';

forEachBackend('tensor methods', () => {
  it('match the functions they call', () => {
    const x = t.tensor([[-1.5, 0.25, 2.5], [3, -0.5, 1]], { dtype: 'float64' });
    const i = t.tensor([[2, 0], [1, 1]], { dtype: 'int32' });
    const pairs: [string, Tensor, Tensor][] = [
      ['erf', x.erf(), t.erf(x)], ['trunc', x.trunc(), t.trunc(x)], ['reciprocal', x.reciprocal(), t.reciprocal(x)],
      ['remainder', x.remainder(0.7), t.remainder(x, 0.7)], ['floorDivide', x.floorDivide(0.7), t.floorDivide(x, 0.7)],
      ['leakyRelu', x.leakyRelu(0.3), t.leakyRelu(x, 0.3)], ['gelu', x.gelu('tanh'), t.gelu(x, 'tanh')], ['silu', x.silu(), t.silu(x)],
      ['softplus', x.softplus(2, 3), t.softplus(x, 2, 3)], ['where', x.where(x.gt(0), -1), t.where(x.gt(0), x, -1)],
      ['outer', x.at(0).outer(x.at(1)), t.outer(x.at(0), x.at(1))], ['gather', x.gather(1, i), t.gather(x, 1, i)],
      ['indexSelect', x.indexSelect(1, i.at(0)), t.indexSelect(x, 1, i.at(0))], ['maskedFill', x.maskedFill(x.lt(0), 7), t.maskedFill(x, x.lt(0), 7)],
      ['flip', x.flip(1), t.flip(x, 1)], ['repeat', x.repeat([2, 1]), t.repeat(x, [2, 1])], ['tril', x.tril(), t.tril(x)], ['triu', x.triu(1), t.triu(x, 1)],
      ['sort', x.sort(1).values, t.sort(x, 1).values], ['topk', x.topk(2).indices, t.topk(x, 2).indices], ['argsort', x.argsort(0), t.argsort(x, 0)],
      ['split', x.split(2, 1)[1]!, t.split(x, 2, 1)[1]!], ['chunk', x.chunk(2)[0]!, t.chunk(x, 2)[0]!],
    ];
    for (const [name, a, b] of pairs) assertClose(a, b, {}, name);
  });
});
