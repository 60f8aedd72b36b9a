// Public surface of nn: modules, containers, layers and initialisations (`import { nn } from 'tessera'`).
export { Module, Parameter, type StateDict, type LoadStateDictResult, type SummaryRow, type AnyModule } from './module.js';
export { Sequential, ModuleList, ModuleDict } from './containers.js';
export * as init from './init.js';
export { assignValues } from './inplace.js';
export { Linear, Identity, Flatten, type LayerOptions, type LinearOptions } from './layers/linear.js';
export { ReLU, GELU, SiLU, Tanh, Sigmoid, LeakyReLU } from './layers/activation.js';
