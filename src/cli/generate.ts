// `tessera generate <checkpoint>`: samples text from a language-model checkpoint (char-gpt, char-lstm).
// Registers cpu and wasm; wasm is the default where WebAssembly SIMD runs (TESSERA_BACKEND overrides).
import { defaultBackendName } from '../backend/default.js';
import { manualSeed } from '../core/random.js';
import { noGrad } from '../autodiff/mode.js';
import { recipes } from '../train/recipes/index.js';
import { loadTaskForInference } from '../train/quantized-checkpoint.js';
import { numberOption, parseArgs, selectBackend, UsageError } from '../train/cli-options.js';

const usage = `usage: tessera generate <checkpoint dir or file> [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--seed N] [--backend NAME]
  defaults: --prompt "\\n" --tokens 200 --temperature 0.8 (top-k off) --seed 0`;

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['prompt', 'tokens', 'temperature', 'top-k', 'seed', 'backend'], ['help']);
    if (p.flags.has('help')) { console.log(usage); return 0; }
    const path = p.positional[0];
    if (path === undefined) throw new UsageError('give the checkpoint (the --out directory of `tessera train char-gpt`, or its checkpoint.safetensors).');
    await selectBackend(p.values.get('backend') ?? defaultBackendName());
    const { task, saved } = await loadTaskForInference(recipes, path); // float or `tessera quantize` output
    if (task.generate === undefined) throw new UsageError(`the checkpoint is from '${saved.recipe}', which is not a language model; use a char-gpt or char-lstm checkpoint.`);
    const topK = p.values.has('top-k') ? numberOption(p.values, 'top-k', 0, 'integer') : undefined;
    manualSeed(numberOption(p.values, 'seed', 0, 'non-negative integer'));
    const text = noGrad(() => task.generate!({
      prompt: p.values.get('prompt') ?? '\n',
      maxNewTokens: numberOption(p.values, 'tokens', 200, 'integer'),
      temperature: numberOption(p.values, 'temperature', 0.8),
      ...(topK !== undefined ? { topK } : {}),
    }));
    process.stdout.write(text + '\n');
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`tessera generate: ${e.message}\n\n${usage}`); return 2; }
    throw e;
  }
}
