// Public surface of the communication layer: process groups, transports, collectives, launcher
// helpers (all moving Float32Array / Float64Array / Int32Array data), and data-parallel training
// of nn modules on top of them.
export type { CommArray, DType, ReduceOp } from './types.js';
export { dtypeOf, sharedArray, REDUCE_OPS, DTYPES } from './types.js';
export { DistError, PeerLostError, DistTimeoutError, GroupClosedError } from './errors.js';
export type { InitOptions } from './init.js';
export { initProcessGroup } from './init.js';
export type { CallOptions } from './process-group.js';
export { ProcessGroup } from './process-group.js';
export { Work } from './work.js';
export type { Algorithm, AlgorithmOf, Collective } from './algorithms/registry.js';
export { ALGORITHMS } from './algorithms/registry.js';
export type { CostModel } from './cost-model.js';
export { predictSeconds, chooseAlgorithm, fitAlphaBeta, DEFAULT_COST_MODEL } from './cost-model.js';
export type { LaunchEnv } from './env.js';
export { readLaunchEnv } from './env.js';
export type { Blocks } from './partition.js';
export { evenBlocks } from './partition.js';
export type { SpawnThreadRanksOptions, ThreadRankContext, ThreadRanks, RankOutcome } from './thread/spawn.js';
export { spawnThreadRanks, runThreadRanks } from './thread/spawn.js';
export type { Transport, TransportKind, Sink } from './transport.js';
export type { DdpOptions } from './ddp.js';
export { DistributedDataParallel } from './ddp.js';
export type { ZeroOptions } from './zero.js';
export { ZeroOptimizer } from './zero.js';
export type { PipelineOptions, PipelineSchedule, PipelineOp, PipelineChunk } from './pipeline.js';
export { PipelineParallel, pipelineOrder } from './pipeline.js';
export { TiedParameters, type TiedParameter } from './tied-parameters.js';
export type { MeasuredPipelineSchedule, PipelineStageTimes } from './pipeline-measure.js';
export type { ConsistencyModel, ParameterServerCheckpoint, ParameterServerOptions, ParameterShard, PullInfo } from './parameter-server.js';
export { ParameterServer } from './parameter-server.js';
export type { ParallelBlock } from './parallel-stack.js';
export { ParallelStack } from './parallel-stack.js';
export { TensorParallelMLP, TensorParallelAttention } from './tensor-parallel.js';
export { FullyShardedDataParallel, type FsdpOptions, type FsdpMemory, type FsdpFlatSpace } from './fsdp.js';
export { ExpertParallelMoE } from './expert-parallel.js';
export { averageGradients, reduceGradients } from './tensor-sync.js';
export { VocabParallelEmbedding, VocabParallelHead, vocabParallelCrossEntropy } from './vocab-parallel.js';
