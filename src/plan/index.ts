// The planner's public surface: analytic models of training a transformer on a cluster. Pure
// functions of plain data (no backend), so they also run in a browser.
export * from './conventions.js';
export * from './model.js';
export * from './presets.js';
export * from './params.js';
export * from './flops.js';
export * from './hardware.js';
export * from './parallel-config.js';
export * from './memory.js';
export * from './collectives.js';
export * from './comm-overlap.js';
export * from './step-time.js';
export * from './comm-volumes.js';
export * from './pipeline.js';
export * from './partition.js';
export * from './op-graph.js';
export * from './sharding-spec.js';
export * from './intra-op.js';
export * from './search.js';
export * from './advise.js';
