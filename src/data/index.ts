// Public surface of data: file-format parsers (IDX, CSV), tokenizers (characters, GPT-2 BPE), seeded
// data-order randomness, and loaders for the shipped and user-given datasets (Node).
export * from './idx.js';
export * from './csv.js';
export * from './text.js';
export * from './bpe.js';
export * from './random.js';
export * from './datasets.js';
export * from './dataset.js';
export * from './loader.js';
export * from './collate.js';
export * from './images.js';
export * from './sequence.js';
