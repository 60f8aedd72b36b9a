// Entry point of a Node worker thread of the wasm backend's pool (see node-workers.ts).
import { workerData } from 'node:worker_threads';
import { runWorkerLoop, type WorkerInit } from './worker-loop.js';

runWorkerLoop(workerData as WorkerInit);
