// Public surface of io: the safetensors checkpoint format (bytes level, browser-safe), float16/bfloat16
// bit conversions, gzip, and the Node file adapter (atomic saves).
export * from './safetensors.js';
export * from './half.js';
export { gunzip, isGzip, maybeGunzip } from './gzip.js';
export { loadFile, loadMaybeGzippedFile, saveFile } from './file.js';
export * from './checkpoint.js';
