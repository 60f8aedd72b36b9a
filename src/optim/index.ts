// Public surface of optim: optimizers, learning-rate schedules and gradient clipping.
export { Optimizer, type BaseOptions, type ParamGroup, type ParamsArg, type ParamState, type OptimizerStateDict, type UpdateContext } from './optimizer.js';
export { SGD, type SgdOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { RMSprop, type RmspropOptions } from './rmsprop.js';
export { Adagrad, type AdagradOptions } from './adagrad.js';
export {
  LRScheduler, StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LambdaLR, LinearLR, OneCycleLR, SequentialLR, warmupCosine,
  type SchedulableOptimizer, type SchedulerStateDict, type OneCycleOptions,
} from './scheduler.js';
export { clipGradNorm, clipGradValue } from './clip.js';
