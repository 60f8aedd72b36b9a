export const version = '0.1.0';
export * as data from './data/index.js';
export * as io from './io/index.js';
