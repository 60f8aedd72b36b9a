// Cost analysis of a graph on a hardware description: per node (and per fused kernel) FLOPs, bytes
// moved, arithmetic intensity and the roofline-bound time max(flops / peak, bytes / bandwidth);
// totals for the graph. Views cost nothing. The costs come from the primitives' `cost` and the
// graph ops' own (a fused kernel reads its inputs and writes its output once).
import type { Graph } from '../graph/graph.js';
import { opDef } from '../graph/graph-ops.js';
import type { DeviceSpec } from '../plan/hardware.js';

export interface Hardware {
  name?: string;
  /** FLOP/s. */
  peakFlops: number;
  /** Bytes/s. */
  memoryBandwidth: number;
}

export interface NodeAnalysis {
  index: number;
  op: string;
  flops: number;
  bytes: number;
  /** FLOPs per byte (Infinity for compute without memory traffic; 0 for views). */
  intensity: number;
  /** Roofline-bound seconds: max(compute time, memory time). */
  seconds: number;
  bound: 'compute' | 'memory' | 'free';
}

export interface GraphAnalysis {
  hardware: Hardware;
  nodes: NodeAnalysis[];
  totals: { flops: number; bytes: number; seconds: number; intensity: number; computeBoundNodes: number; memoryBoundNodes: number };
  /** The intensity where the roofline turns (peakFlops / memoryBandwidth). */
  ridgeIntensity: number;
}

function toHardware(h: Hardware | DeviceSpec): Hardware {
  if ('peak' in h) {
    const peak = h.peak.fp32 ?? h.peak.bf16 ?? 0;
    return { name: h.name, peakFlops: peak, memoryBandwidth: h.memoryBandwidth };
  }
  return h;
}

export function analyze(g: Graph, hardware: Hardware | DeviceSpec): GraphAnalysis {
  const hw = toHardware(hardware);
  const nodes = g.nodes.map((n, index): NodeAnalysis => {
    const c = opDef(n.op).cost(n.inputs.map((v) => g.value(v)), n.attrs, n.outputs.map((v) => g.value(v)));
    const bytes = c.bytesRead + c.bytesWritten;
    const tc = c.flops / hw.peakFlops, tm = bytes / hw.memoryBandwidth;
    return {
      index, op: n.op, flops: c.flops, bytes,
      intensity: bytes === 0 ? (c.flops === 0 ? 0 : Infinity) : c.flops / bytes,
      seconds: Math.max(tc, tm),
      bound: c.flops === 0 && bytes === 0 ? 'free' : tc >= tm ? 'compute' : 'memory',
    };
  });
  const flops = nodes.reduce((s, n) => s + n.flops, 0);
  const bytes = nodes.reduce((s, n) => s + n.bytes, 0);
  return {
    hardware: hw,
    nodes,
    totals: {
      flops, bytes, seconds: nodes.reduce((s, n) => s + n.seconds, 0), intensity: bytes === 0 ? 0 : flops / bytes,
      computeBoundNodes: nodes.filter((n) => n.bound === 'compute').length,
      memoryBoundNodes: nodes.filter((n) => n.bound === 'memory').length,
    },
    ridgeIntensity: hw.peakFlops / hw.memoryBandwidth,
  };
}
