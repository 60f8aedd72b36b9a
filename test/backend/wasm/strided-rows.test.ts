import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRows, forEachRow } from '../../../src/backend/wasm/strided-rows.js';

function rows(shape: number[], strides: number[][], base: number[]): number[][] {
  const plan = planRows(shape, strides);
  const out: number[][] = [];
  forEachRow(plan, base, (o) => out.push([...o]));
  return out;
}

test('contiguous operands collapse to one row', () => {
  const p = planRows([2, 3, 4], [[12, 4, 1], [12, 4, 1]]);
  assert.equal(p.rowLength, 24);
  assert.deepEqual(p.outerShape, []);
  assert.deepEqual(p.innerStrides, [1, 1]);
});

test('a broadcast bias gives one row per outer index, restarting the bias', () => {
  // out[2,3,4] = x[2,3,4] + bias[4] (bias strides [0, 0, 1])
  const p = planRows([2, 3, 4], [[12, 4, 1], [12, 4, 1], [0, 0, 1]]);
  assert.equal(p.rowLength, 4);
  assert.deepEqual(p.outerShape, [6]);
  assert.deepEqual(p.outerStrides, [[4], [4], [0]]);
  assert.deepEqual(rows([2, 3, 4], [[12, 4, 1], [12, 4, 1], [0, 0, 1]], [0, 100, 7]).slice(0, 3), [[0, 100, 7], [4, 104, 7], [8, 108, 7]]);
});

test('size-1 dimensions are dropped and transposed operands keep their strides', () => {
  const p = planRows([1, 3, 1, 2], [[6, 2, 2, 1], [6, 1, 6, 3]]);
  assert.deepEqual(p.outerShape, [3]);
  assert.equal(p.rowLength, 2);
  assert.deepEqual(p.innerStrides, [1, 3]);
  assert.deepEqual(rows([3, 2], [[2, 1], [1, 3]], [0, 0]), [[0, 0], [2, 1], [4, 2]]);
});

test('every outer index is visited once in row-major order; empty and scalar shapes', () => {
  const visited = rows([2, 3, 5], [[1, 10, 100]], [0]).map((o) => o[0]);
  assert.deepEqual(visited, [0, 10, 20, 1, 11, 21]);
  assert.deepEqual(rows([], [[]], [3]), [[3]]);
  assert.equal(planRows([], [[]]).rowLength, 1);
  assert.equal(planRows([4, 0], [[0, 1]]).rowLength, 0);
  assert.deepEqual(rows([0, 4], [[4, 1]], [0]), []);
});
