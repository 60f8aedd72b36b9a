// The op set's public surface. Importing this module also attaches the Tensor methods.
export * from './creation.js';
export * from './elementwise.js';
export * from './shape.js';
export * from './reduce.js';
export * from './linalg.js';
export { bind, addDispatchObserver, type DispatchObserver } from './dispatch.js';
export { primitives, type PrimitiveName, type PrimitiveAttrs, type Cost, type ValueInfo } from './primitives.js';
export * from './indexing.js';
export * from './combine.js';
export * from './sort.js';
export * from './einsum.js';
export * from './inplace.js';
export * from './nn/index.js';
export * from './cost.js';
export * as linalg from './matrix/index.js';
