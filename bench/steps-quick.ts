// The benchmark's MLP, CNN and GPT training steps (bench/workloads), eager and t.jit, timed in
// this process: the median of 15 steps after 5 warm-up steps each. A quick check between two
// checkouts (run it in each, alternating, on the same machine), not a replacement for npm run bench.
//   TESSERA_THREADS=2 node --import tsx bench/steps-quick.ts
import { defaultSpec } from './spec.js';
import { tesseraCnnStep, tesseraGptStep, tesseraMlpStep } from './workloads/tessera-models.js';

const spec = defaultSpec(false);
const out: string[] = [];
for (const [name, make] of [['mlp', tesseraMlpStep], ['cnn', tesseraCnnStep], ['gpt', tesseraGptStep]] as const) {
  for (const jit of [false, true]) {
    const step = make(spec, { jit });
    for (let i = 0; i < 5; i++) step();
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const start = performance.now();
      step();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    out.push(`${name}${jit ? '-jit' : ''} ${times[7]!.toFixed(1)} ms`);
  }
}
console.log(out.join('  '));
