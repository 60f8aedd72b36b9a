// Autodiff's public surface: reverse mode, forward mode, function transformations, gradcheck.
export { backward, gradientsOf, type BackwardOptions } from './backward.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './mode.js';
export { jvp } from './forward.js';
export { grad, valueAndGrad, vjp, jacobian, jacrev, jacfwd, hessian, gradients, type GradOptions, type ArgnumsOrOptions } from './functional.js';
export { gradcheck, gradgradcheck, type GradcheckOptions, type GradgradcheckOptions, type GradcheckReport, type GradcheckMismatch, type GradcheckFn } from './gradcheck.js';
export { checkpoint, checkpointSequential, type CheckpointResult } from './checkpoint.js';
export { offload, lastOffloadStats, offloadTotals, offloadPoolStats, setOffloadPoolLimit, type OffloadStats } from './offload.js';
export { savedTensorMemory, type SavedMemory } from './saved-memory.js';
