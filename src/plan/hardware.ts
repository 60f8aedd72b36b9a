// Accelerators, links and clusters as plain data. Peak numbers are the vendors' dense figures
// (the sparse 2:4 figure is 2× dense where the device supports it; conventions.peak picks).
// Sources: NVIDIA V100/A100/H100/H200 datasheets, the DGX B200 datasheet (sparse numbers halved),
// AMD Instinct MI300X datasheet, Google Cloud TPU system-architecture pages, and
// ../../shared/research/spikes.md §B for this machine's CPU.

export type Dtype = 'fp32' | 'tf32' | 'bf16' | 'fp16' | 'fp8' | 'int8';

export interface DeviceSpec {
  name: string;
  /** Dense peak FLOP/s per dtype (int8: OP/s). Missing dtypes are not supported in hardware. */
  peak: Partial<Record<Dtype, number>>;
  /** Whether the vendor's sparse figure (2× dense, 2:4 structured sparsity) exists. */
  sparsity: boolean;
  /** Device memory, bytes. */
  memory: number;
  /** Memory bandwidth, bytes/s. */
  memoryBandwidth: number;
  /** Fraction of peak that large, well-shaped matmuls reach in practice. Used by the step-time
   * model only. NVIDIA's and AMD's GEMM benchmarks put big bf16 GEMMs at 75-90% of dense peak. */
  matmulEfficiency: number;
  /** Default links of a node built from this device. */
  defaultIntraLink: string;
  defaultInterLink: string;
  defaultDevicesPerNode: number;
  note?: string;
}

const T = 1e12, G = 1e9, GB = 1e9, GiB = 2 ** 30;

const deviceList: DeviceSpec[] = [
  { name: 'V100', peak: { fp32: 15.7 * T, fp16: 125 * T }, sparsity: false, memory: 32 * GiB, memoryBandwidth: 900 * GB,
    matmulEfficiency: 0.8, defaultIntraLink: 'nvlink2', defaultInterLink: 'ib-edr', defaultDevicesPerNode: 8, note: 'SXM2 32 GB' },
  { name: 'A100-40GB', peak: { fp32: 19.5 * T, tf32: 156 * T, bf16: 312 * T, fp16: 312 * T, int8: 624 * T }, sparsity: true,
    memory: 40 * GiB, memoryBandwidth: 1555 * GB, matmulEfficiency: 0.7, defaultIntraLink: 'nvlink3', defaultInterLink: 'ib-hdr', defaultDevicesPerNode: 8 },
  { name: 'A100-80GB', peak: { fp32: 19.5 * T, tf32: 156 * T, bf16: 312 * T, fp16: 312 * T, int8: 624 * T }, sparsity: true,
    memory: 80 * GiB, memoryBandwidth: 2039 * GB, matmulEfficiency: 0.7, defaultIntraLink: 'nvlink3', defaultInterLink: 'ib-hdr', defaultDevicesPerNode: 8 },
  { name: 'H100-SXM', peak: { fp32: 66.9 * T, tf32: 494.7 * T, bf16: 989.4 * T, fp16: 989.4 * T, fp8: 1978.9 * T, int8: 1978.9 * T }, sparsity: true,
    memory: 80 * GiB, memoryBandwidth: 3350 * GB, matmulEfficiency: 0.75, defaultIntraLink: 'nvlink4', defaultInterLink: 'ib-ndr', defaultDevicesPerNode: 8 },
  { name: 'H100-PCIe', peak: { fp32: 51.2 * T, tf32: 378 * T, bf16: 756 * T, fp16: 756 * T, fp8: 1513 * T, int8: 1513 * T }, sparsity: true,
    memory: 80 * GiB, memoryBandwidth: 2000 * GB, matmulEfficiency: 0.75, defaultIntraLink: 'pcie5', defaultInterLink: 'ib-ndr', defaultDevicesPerNode: 8 },
  { name: 'H200', peak: { fp32: 66.9 * T, tf32: 494.7 * T, bf16: 989.4 * T, fp16: 989.4 * T, fp8: 1978.9 * T, int8: 1978.9 * T }, sparsity: true,
    memory: 141 * GB, memoryBandwidth: 4800 * GB, matmulEfficiency: 0.75, defaultIntraLink: 'nvlink4', defaultInterLink: 'ib-ndr', defaultDevicesPerNode: 8 },
  { name: 'B200', peak: { fp32: 75 * T, tf32: 1100 * T, bf16: 2250 * T, fp16: 2250 * T, fp8: 4500 * T, int8: 4500 * T }, sparsity: true,
    memory: 180 * GB, memoryBandwidth: 7700 * GB, matmulEfficiency: 0.75, defaultIntraLink: 'nvlink5', defaultInterLink: 'ib-ndr', defaultDevicesPerNode: 8,
    note: 'DGX B200 figures (1440 GB and 72 PF sparse fp8 per 8 GPUs)' },
  { name: 'MI300X', peak: { fp32: 163.4 * T, tf32: 653.7 * T, bf16: 1307.4 * T, fp16: 1307.4 * T, fp8: 2614.9 * T, int8: 2614.9 * T }, sparsity: true,
    memory: 192 * GB, memoryBandwidth: 5300 * GB, matmulEfficiency: 0.6, defaultIntraLink: 'infinity-fabric', defaultInterLink: 'ib-ndr', defaultDevicesPerNode: 8 },
  { name: 'TPUv4', peak: { bf16: 275 * T, int8: 275 * T }, sparsity: false, memory: 32 * GiB, memoryBandwidth: 1228 * GB,
    matmulEfficiency: 0.8, defaultIntraLink: 'ici-v4', defaultInterLink: 'ici-v4', defaultDevicesPerNode: 4 },
  { name: 'TPUv5e', peak: { bf16: 197 * T, int8: 394 * T }, sparsity: false, memory: 16 * GiB, memoryBandwidth: 819 * GB,
    matmulEfficiency: 0.8, defaultIntraLink: 'ici-v5e', defaultInterLink: 'ici-v5e', defaultDevicesPerNode: 4 },
  { name: 'TPUv5p', peak: { bf16: 459 * T, int8: 918 * T }, sparsity: false, memory: 95 * GiB, memoryBandwidth: 2765 * GB,
    matmulEfficiency: 0.8, defaultIntraLink: 'ici-v5p', defaultInterLink: 'ici-v5p', defaultDevicesPerNode: 4 },
  // This machine: 2 cores of an AMD EPYC (Zen 5). 128-bit wasm SIMD FMA at ~3.5 GHz gives ~56
  // GFLOP/s per core fp32 (spikes.md §B.1); the best wasm SGEMM reached 50 per core and 95-97 on
  // both cores (88% of peak). Memory: 23 GiB visible to the container; bandwidth: 21 GB/s
  // (read+write) measured by one Float64Array.set of 256 MiB in Node 20.
  { name: 'CPU', peak: { fp32: 2 * 56 * G }, sparsity: false, memory: 23 * GiB, memoryBandwidth: 21 * GB,
    matmulEfficiency: 0.87, defaultIntraLink: 'shared-memory', defaultInterLink: 'ethernet-10g', defaultDevicesPerNode: 1,
    note: '2 cores, 128-bit wasm SIMD, 56 GFLOP/s/core fp32 (measured, spikes.md)' },
];

/** Aliases accepted on the command line (`128x8xH100`). */
const deviceAliases: Record<string, string> = {
  a100: 'A100-80GB', 'a100-80': 'A100-80GB', 'a100-40': 'A100-40GB', h100: 'H100-SXM', 'h100-sxm': 'H100-SXM',
  'h100-pcie': 'H100-PCIe', v100: 'V100', h200: 'H200', b200: 'B200', mi300x: 'MI300X',
  tpuv4: 'TPUv4', 'tpu-v4': 'TPUv4', tpuv5e: 'TPUv5e', 'tpu-v5e': 'TPUv5e', tpuv5p: 'TPUv5p', 'tpu-v5p': 'TPUv5p', cpu: 'CPU',
};

export const devices: ReadonlyMap<string, DeviceSpec> = new Map(deviceList.map((d) => [d.name, d]));

export function device(name: string): DeviceSpec {
  const exact = devices.get(name);
  if (exact !== undefined) return exact;
  const lower = name.toLowerCase();
  const byAlias = deviceAliases[lower];
  const found = byAlias !== undefined ? devices.get(byAlias) : deviceList.find((d) => d.name.toLowerCase() === lower);
  if (found === undefined) {
    throw new Error(`unknown device '${name}'. Known devices: ${deviceList.map((d) => d.name).join(', ')} (aliases: ${Object.keys(deviceAliases).join(', ')}).`);
  }
  return found;
}

/** Peak FLOP/s of a device for a dtype under the dense/sparse convention. */
export function peakFlops(d: DeviceSpec, dtype: Dtype, peak: 'dense' | 'sparse' = 'dense'): number {
  const dense = d.peak[dtype];
  if (dense === undefined) {
    throw new Error(`${d.name} has no ${dtype} peak in the hardware table; it supports ${Object.keys(d.peak).join(', ')}.`);
  }
  return peak === 'sparse' && d.sparsity ? 2 * dense : dense;
}

export interface LinkSpec {
  name: string;
  /** Bandwidth per device per direction, bytes/s. */
  bandwidth: number;
  /** Per-message latency (the α of the α-β model), seconds. */
  latency: number;
  /** Bus bandwidth that collectives reach, as a fraction of `bandwidth` (protocol overhead). */
  efficiency: number;
  note?: string;
}

const us = 1e-6;
const linkList: LinkSpec[] = [
  // efficiency: nccl-tests all-reduce busbw over the nominal rate: ~230 of 300 GB/s on A100
  // NVLink 3, ~370 of 450 on H100 NVLink 4 (nccl-tests#212); ~90% of line rate on InfiniBand.
  // NVLink: per-GPU aggregate per direction (NVLink 2: 6 links × 25 GB/s; 3: 12 × 25; 4: 18 × 25;
  // 5: 18 × 50). Latencies follow NCCL's tuning.cc order of magnitude (a few µs per step).
  { name: 'nvlink2', bandwidth: 150 * GB, latency: 2 * us, efficiency: 0.77 },
  { name: 'nvlink3', bandwidth: 300 * GB, latency: 2 * us, efficiency: 0.77 },
  { name: 'nvlink4', bandwidth: 450 * GB, latency: 2 * us, efficiency: 0.82, note: '~370 GB/s effective busbw measured (nccl-tests#212)' },
  { name: 'nvlink5', bandwidth: 900 * GB, latency: 2 * us, efficiency: 0.82 },
  { name: 'pcie4', bandwidth: 32 * GB, latency: 3 * us, efficiency: 0.8, note: 'x16, per direction' },
  { name: 'pcie5', bandwidth: 64 * GB, latency: 3 * us, efficiency: 0.8, note: 'x16, per direction' },
  { name: 'infinity-fabric', bandwidth: 448 * GB, latency: 3 * us, efficiency: 0.7, note: 'MI300X: 7 peers × 64 GB/s per direction' },
  // InfiniBand per port per direction: EDR 100 Gb/s, HDR 200 Gb/s, NDR 400 Gb/s; one port per GPU
  // as in DGX A100/H100. ~5 µs end-to-end latency including the NCCL network step.
  { name: 'ib-edr', bandwidth: 12.5 * GB, latency: 5 * us, efficiency: 0.9 },
  { name: 'ib-hdr', bandwidth: 25 * GB, latency: 5 * us, efficiency: 0.9 },
  { name: 'ib-ndr', bandwidth: 50 * GB, latency: 5 * us, efficiency: 0.9 },
  // TPU ICI: v4 6 links × ~45 GB/s, v5e 4 × ~50, v5p 6 × ~100 (Google Cloud system-architecture pages; per direction approximated).
  { name: 'ici-v4', bandwidth: 270 * GB, latency: 2 * us, efficiency: 0.8 },
  { name: 'ici-v5e', bandwidth: 200 * GB, latency: 2 * us, efficiency: 0.8 },
  { name: 'ici-v5p', bandwidth: 600 * GB, latency: 2 * us, efficiency: 0.8 },
  { name: 'shared-memory', bandwidth: 21 * GB, latency: 1 * us, efficiency: 1, note: 'this machine, same measurement as the CPU entry' },
  { name: 'ethernet-10g', bandwidth: 1.25 * GB, latency: 30 * us, efficiency: 0.9 },
];

export const links: ReadonlyMap<string, LinkSpec> = new Map(linkList.map((l) => [l.name, l]));

export function link(name: string): LinkSpec {
  const l = links.get(name.toLowerCase());
  if (l === undefined) throw new Error(`unknown link '${name}'. Known links: ${linkList.map((x) => x.name).join(', ')}.`);
  return l;
}

export interface ClusterSpec {
  nodes: number;
  devicesPerNode: number;
  device: DeviceSpec;
  /** Between devices of one node. */
  intraLink: LinkSpec;
  /** Between nodes, per device (one NIC per device). */
  interLink: LinkSpec;
}

export function cluster(nodes: number, devicesPerNode: number, deviceName: string, intraLink?: string, interLink?: string): ClusterSpec {
  for (const [k, v] of [['nodes', nodes], ['devicesPerNode', devicesPerNode]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`cluster ${k} must be a positive integer, got ${v}.`);
  }
  const d = device(deviceName);
  return {
    nodes, devicesPerNode, device: d,
    intraLink: link(intraLink ?? d.defaultIntraLink),
    interLink: link(interLink ?? d.defaultInterLink),
  };
}

/** Parses `NODESxPER_NODExDEVICE` (e.g. `128x8xH100`), `COUNTxDEVICE` (nodes of the device's
 * default size: `1024xA100` = 128 nodes of 8) or a bare device name (one device). */
export function parseCluster(text: string): ClusterSpec {
  // Leading counts are digits followed by 'x'; the device name may itself contain an x (MI300X).
  const match = /^((?:\d+[x×])*)(.+)$/i.exec(text.trim());
  const name = match?.[2] ?? '';
  const nums = (match?.[1] ?? '').split(/[x×]/i).filter((f) => f !== '').map(Number);
  if (nums.some((n) => !Number.isInteger(n) || n < 1) || nums.length > 2 || name === '') {
    throw new Error(`cannot parse cluster '${text}': expected NODESxDEVICES_PER_NODExDEVICE (e.g. 128x8xH100), COUNTxDEVICE (e.g. 1024xA100) or DEVICE.`);
  }
  const d = device(name);
  if (nums.length === 2) return cluster(nums[0]!, nums[1]!, d.name);
  if (nums.length === 0) return cluster(1, 1, d.name);
  const count = nums[0]!;
  const per = Math.min(d.defaultDevicesPerNode, count);
  if (count % per !== 0) {
    throw new Error(`cluster '${text}': ${count} devices do not fill whole nodes of ${per}; write NODESxPER_NODEx${d.name}.`);
  }
  return cluster(count / per, per, d.name);
}

export function clusterSize(c: ClusterSpec): number {
  return c.nodes * c.devicesPerNode;
}

export function describeCluster(c: ClusterSpec): string {
  return `${c.nodes}x${c.devicesPerNode}x${c.device.name} (${clusterSize(c)} devices; ${c.intraLink.name} in a node, ${c.interLink.name} between nodes)`;
}
