// `tessera eval <checkpoint>`: rebuilds the model of a `tessera train` checkpoint and evaluates it
// on the recipe's held-out data (a quantized checkpoint from `tessera quantize` too).
// Registers cpu and wasm; wasm is the default where WebAssembly SIMD runs (TESSERA_BACKEND overrides).
import { defaultBackendName } from '../backend/default.js';
import { noGrad } from '../autodiff/mode.js';
import { recipes } from '../train/recipes/index.js';
import { loadTaskForInference } from '../train/quantized-checkpoint.js';
import { parseArgs, selectBackend, UsageError } from '../train/cli-options.js';

const usage = 'usage: tessera eval <checkpoint dir or file> [--backend NAME] [--json]';

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['backend'], ['json', 'help']);
    if (p.flags.has('help')) { console.log(usage); return 0; }
    const path = p.positional[0];
    if (path === undefined) throw new UsageError('give the checkpoint (the --out directory of `tessera train`, or its checkpoint.safetensors).');
    await selectBackend(p.values.get('backend') ?? defaultBackendName());
    const { task, saved } = await loadTaskForInference(recipes, path); // float or `tessera quantize` output
    const started = performance.now();
    const result = noGrad(() => task.evaluate());
    const seconds = (performance.now() - started) / 1000;
    if (p.flags.has('json')) {
      console.log(JSON.stringify({ recipe: saved.recipe, steps: saved.step, ...result, seconds }));
      return 0;
    }
    console.log(`${saved.recipe} after ${saved.step} steps (${task.description})`);
    if (result.testAccuracy !== undefined) console.log(`test accuracy ${(100 * result.testAccuracy).toFixed(2)}%` + (result.testLoss !== undefined ? `  test loss ${result.testLoss.toFixed(4)}` : ''));
    if (result.valLoss !== undefined) console.log(`validation loss ${result.valLoss.toFixed(4)} nats/token`);
    if (result.sample !== undefined) console.log(`sample:\n${result.sample}`);
    console.log(`evaluated in ${seconds.toFixed(1)}s`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`tessera eval: ${e.message}\n\n${usage}`); return 2; }
    throw e;
  }
}
