import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterSize, device, parseCluster, peakFlops, withConventions, describeConventions } from '../../src/plan/index.js';

test('cluster strings: NODESxPERxDEVICE, COUNTxDEVICE, bare device; names containing x parse', () => {
  const a = parseCluster('128x8xH100');
  assert.equal(a.nodes, 128); assert.equal(a.devicesPerNode, 8); assert.equal(a.device.name, 'H100-SXM');
  assert.equal(a.intraLink.name, 'nvlink4'); assert.equal(a.interLink.name, 'ib-ndr');
  const b = parseCluster('1024xA100');
  assert.equal(b.nodes, 128); assert.equal(clusterSize(b), 1024);
  assert.equal(parseCluster('MI300X').device.name, 'MI300X');
  assert.equal(parseCluster('2x8xMI300X').device.name, 'MI300X');
  assert.throws(() => parseCluster('8xfoo'), /unknown device 'foo'/);
  assert.throws(() => parseCluster('12xA100'), /whole nodes/);
});

test('peaks: dense by default, sparse doubles where supported; CPU entry is this machine', () => {
  const h = device('H100');
  assert.equal(peakFlops(h, 'bf16'), 989.4e12);
  assert.equal(peakFlops(h, 'bf16', 'sparse'), 2 * 989.4e12);
  assert.equal(peakFlops(device('TPUv4'), 'bf16', 'sparse'), 275e12);
  assert.equal(peakFlops(device('CPU'), 'fp32'), 112e9);
  assert.throws(() => peakFlops(device('V100'), 'bf16'), /no bf16 peak/);
  assert.match(describeConventions(withConventions({ bytesPerParam: 18 })), /18 B\/param/);
  assert.throws(() => withConventions({ bytesPerParam: 20 as 16 }), /16 .* or 18/);
});
