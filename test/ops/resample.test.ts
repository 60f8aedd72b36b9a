// interpolate (every mode), gridSample (bilinear/nearest × zeros/border/reflection × alignCorners),
// affineGrid, roll and repeatInterleave match PyTorch, forward and backward, on the
// cases recorded by scripts/fixtures/torch_resample.py (test/fixtures/torch/resample.json), in
// float64 and in float32 (where PyTorch computes source positions in float32: another rounding
// would pick other rows or weights). Errors name the op and what to change.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { casesFor, readTorchFixture, runCase, type Op } from '../helpers/torch-fixture.js';

const fixture = readTorchFixture('resample.json');

const interp = (options: t.InterpolateOptions): Op => (x: Tensor) => t.interpolate(x, options);

/** The tessera side of every case, by name (the part before '@dtype'). */
const ops: Record<string, Op> = {
  nearest1dSize: interp({ size: 12 }),
  nearest1dDown: interp({ size: 4 }),
  nearest1dScale: interp({ scaleFactor: 1.7 }),
  nearest1dDouble: interp({ scaleFactor: 2 }),
  nearest2d: interp({ size: [7, 9] }),
  nearest2dScale: interp({ scaleFactor: [1.5, 2.3] }),
  nearest2dRecompute: interp({ scaleFactor: 1.7, recomputeScaleFactor: true }),
  nearestExact2d: interp({ size: [7, 4], mode: 'nearest-exact' }),
  nearest3d: interp({ scaleFactor: 2 }),
  linear: interp({ size: 11, mode: 'linear' }),
  linearAlign: interp({ size: 11, mode: 'linear', alignCorners: true }),
  linearDown: interp({ scaleFactor: 0.6, mode: 'linear' }),
  bilinear: interp({ size: [9, 7], mode: 'bilinear' }),
  bilinearAlign: interp({ size: [9, 7], mode: 'bilinear', alignCorners: true }),
  bilinearScale: interp({ scaleFactor: [1.5, 2.5], mode: 'bilinear' }),
  bilinearDown: interp({ size: [3, 2], mode: 'bilinear' }),
  bicubic: interp({ size: [8, 9], mode: 'bicubic' }),
  bicubicAlign: interp({ size: [8, 9], mode: 'bicubic', alignCorners: true }),
  bicubicScale: interp({ scaleFactor: 1.75, mode: 'bicubic' }),
  trilinear: interp({ size: [5, 3, 7], mode: 'trilinear' }),
  trilinearAlign: interp({ size: [4, 6, 5], mode: 'trilinear', alignCorners: true }),
  area: interp({ size: [3, 4], mode: 'area' }),
  rollAxes: (x) => x.roll([2, -1], [1, 0]),
  rollFlat: (x) => t.roll(x, 4),
  rollBig: (x) => x.roll(-11, 2),
  repeatInterleave: (x) => t.repeatInterleave(x, 2),
  repeatInterleaveAxis: (x) => x.repeatInterleave([1, 0, 3], 1),
  affineGrid: (theta) => t.affineGrid(theta, [2, 3, 4, 5]),
  affineGridAlign: (theta) => t.affineGrid(theta, [2, 3, 4, 5], { alignCorners: true }),
  spatialTransformer: (x, theta) => t.gridSample(x, t.affineGrid(theta, [1, 2, 6, 7])),
};
for (const mode of ['bilinear', 'nearest'] as const) {
  for (const paddingMode of ['zeros', 'border', 'reflection'] as const) {
    for (const alignCorners of [false, true]) {
      ops[`gridSample_${mode}_${paddingMode}_${alignCorners ? 'align' : 'edges'}`] = (x, grid) => t.gridSample(x, grid, { mode, paddingMode, alignCorners });
    }
  }
}

forEachBackend(`resampling matches PyTorch ${fixture.torch}`, (backend) => {
  for (const c of casesFor(fixture, backend)) it(c.name, () => runCase(c, (key) => ops[key]));

  it('nn.Upsample is interpolate as a layer', () => {
    const x = t.randn([1, 2, 3, 4]);
    const up = new t.nn.Upsample({ scaleFactor: 2, mode: 'bilinear', alignCorners: true });
    assert.deepEqual(Array.from(up.forward(x).data()), Array.from(t.interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true }).data()));
  });

  it('bad arguments name the op and what to change', () => {
    const x = t.randn([1, 2, 3, 4]);
    assert.throws(() => t.interpolate(x, { size: 5, mode: 'linear' }), /interpolate\(linear\): 'linear' resizes 1 spatial axis .*use 'bilinear' or 'bicubic'/);
    assert.throws(() => t.interpolate(x, { size: 5, scaleFactor: 2 }), /give exactly one of size and scaleFactor/);
    assert.throws(() => t.interpolate(x, { size: [5, 6, 7] }), /size has 3 entries for 2 spatial axes/);
    assert.throws(() => t.interpolate(x, { size: 5, alignCorners: true }), /alignCorners applies to the linear modes and bicubic only/);
    assert.throws(() => t.interpolate(t.randn([4, 4]), { size: 5 }), /expects \[N, C, \*spatial\] with 1 to 3 spatial axes, got shape \[4, 4\]/);
    assert.throws(() => t.interpolate(x, { scaleFactor: 0.1 }), /makes an empty output/);
    assert.throws(() => t.roll(x, [1, 2], 0), /roll: needs one shift per axis/);
    assert.throws(() => t.roll(x, [1, 2]), /without axes, one shift rolls the flattened tensor/);
    assert.throws(() => t.repeatInterleave(x, [1, 2], 3), /repeats has 2 counts for 4 elements/);
    assert.throws(() => t.gridSample(x, t.randn([1, 3, 3, 3])), /gridSample: expects a grid of shape \[N, Ho, Wo, 2\]/);
    assert.throws(() => t.gridSample(x, t.randn([1, 3, 3, 2]), { paddingMode: 'wrap' as never }), /paddingMode must be 'zeros', 'border' or 'reflection'/);
    assert.throws(() => t.affineGrid(t.randn([2, 2, 3]), [1, 2, 3, 4]), /affineGrid: expects theta of shape \[N, 2, 3\] with N = 1/);
  });
});
