// `tessera quantize <checkpoint>`: post-training weight quantization of a `tessera train` checkpoint.
// Evaluates the float model on the recipe's held-out data, quantizes its Linear layers
// (quant.quantizeModel), evaluates again, prints both with the model sizes, and writes the quantized
// checkpoint (which `tessera eval` reads).
import { defaultBackendName } from '../backend/default.js';
import { TesseraError } from '../core/errors.js';
import { noGrad } from '../autodiff/mode.js';
import { recipes } from '../train/recipes/index.js';
import { loadTrainedTask, readCheckpoint } from '../train/trainer.js';
import { writeQuantizedCheckpoint } from '../train/quantized-checkpoint.js';
import { numberOption, parseArgs, selectBackend, UsageError } from '../train/cli-options.js';
import { formatQuantizeReport, quantizeModel, type QuantizeModelOptions } from '../quant/quantize-model.js';
import type { Calibration, QuantScheme } from '../quant/scheme.js';
import type { EvalResult } from '../train/recipe.js';

const usage = [
  'usage: tessera quantize <checkpoint dir or file> --bits 8|4 [--scheme per-channel|per-tensor|group] [--group-size N]',
  '                        [--asymmetric] [--calibration minmax|percentile|mse] [--dynamic] [--out FILE] [--backend NAME] [--json]',
  '',
  'Quantizes the weights of every Linear layer of a `tessera train` checkpoint and reports the held-out',
  'accuracy (or loss) and model bytes before and after; --out writes the quantized checkpoint, which',
  '`tessera eval` evaluates. Defaults: --scheme per-channel (one scale per output feature), symmetric,',
  'min/max calibration; --scheme group uses --group-size (default 32) consecutive input features per scale.',
  '--dynamic also quantizes each layer\'s input per row to int8 on the fly (int8 × int8 → int32 kernels;',
  'needs --bits 8, symmetric, per-channel or per-tensor).',
].join('\n');

function describe(r: EvalResult): string {
  if (r.testAccuracy !== undefined) return `test accuracy ${(100 * r.testAccuracy).toFixed(2)}%` + (r.testLoss !== undefined ? `  test loss ${r.testLoss.toFixed(4)}` : '');
  if (r.valLoss !== undefined) return `validation loss ${r.valLoss.toFixed(4)} nats/token`;
  return 'no metric';
}

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['bits', 'scheme', 'group-size', 'calibration', 'out', 'backend'], ['asymmetric', 'dynamic', 'json', 'help']);
    if (p.flags.has('help')) { console.log(usage); return 0; }
    const path = p.positional[0];
    if (path === undefined) throw new UsageError('give the checkpoint (the --out directory of `tessera train`, or its checkpoint.safetensors).');
    const bits = numberOption(p.values, 'bits', 8, 'integer');
    if (bits !== 8 && bits !== 4) throw new UsageError(`--bits must be 8 or 4, got ${bits}.`);
    const scheme = (p.values.get('scheme') ?? 'per-channel') as QuantScheme;
    if (!['per-channel', 'per-tensor', 'group'].includes(scheme)) throw new UsageError(`--scheme must be per-channel, per-tensor or group, got '${scheme}'.`);
    if (p.values.has('group-size') && scheme !== 'group') throw new UsageError('--group-size goes with --scheme group.');
    const calibration = (p.values.get('calibration') ?? 'minmax') as Calibration;
    if (!['minmax', 'percentile', 'mse'].includes(calibration)) throw new UsageError(`--calibration must be minmax, percentile or mse, got '${calibration}'.`);
    const options: QuantizeModelOptions = { bits, scheme, symmetric: !p.flags.has('asymmetric'), calibration };
    if (scheme === 'group') options.groupSize = numberOption(p.values, 'group-size', 32, 'integer');
    const dynamic = p.flags.has('dynamic');
    if (dynamic) {
      if (bits !== 8 || scheme === 'group' || !options.symmetric) throw new UsageError('--dynamic needs --bits 8 with a symmetric per-channel or per-tensor weight (no --asymmetric, no --scheme group).');
      options.activations = 'dynamic-int8';
    }
    await selectBackend(p.values.get('backend') ?? defaultBackendName());

    if ((await readCheckpoint(path) as unknown as { quantization?: unknown }).quantization !== undefined) {
      throw new UsageError('this checkpoint is already quantized; quantize the float checkpoint it came from.');
    }
    const { task, saved } = await loadTrainedTask(recipes, path);
    let started = performance.now();
    const before = noGrad(() => task.evaluate());
    const floatSeconds = (performance.now() - started) / 1000;
    const { model, report } = quantizeModel(task.model, options);
    if (model !== task.model) throw new Error('quantize: the model is a single Linear layer; nothing to rebuild it into.');
    started = performance.now();
    const after = noGrad(() => task.evaluate());
    const quantSeconds = (performance.now() - started) / 1000;
    const out = p.values.get('out');
    if (out !== undefined) {
      await writeQuantizedCheckpoint(out, { recipe: saved.recipe, options: saved.options, step: saved.step }, task.model);
    }
    const summary = {
      recipe: saved.recipe, bits, scheme, groupSize: options.groupSize, symmetric: options.symmetric, calibration, activations: dynamic ? 'dynamic-int8' : 'none',
      float: before, quantized: after, floatSeconds, quantizedSeconds: quantSeconds,
      modelBytesBefore: report.modelBytesBefore, modelBytesAfter: report.modelBytesAfter, layers: report.layers,
      ...(out === undefined ? {} : { checkpoint: out }),
    };
    if (p.flags.has('json')) {
      console.log(JSON.stringify(summary));
      return 0;
    }
    const how = `${bits}-bit ${options.symmetric ? 'symmetric' : 'affine'} ${scheme}${scheme === 'group' ? ` (groups of ${options.groupSize})` : ''}, ${calibration} calibration${dynamic ? ', dynamic int8 activations' : ''}`;
    console.log(`${saved.recipe} after ${saved.step} steps (${task.description}); ${how}`);
    console.log(formatQuantizeReport(report));
    console.log(`float32:   ${describe(before)}  (${floatSeconds.toFixed(2)}s)`);
    console.log(`quantized: ${describe(after)}  (${quantSeconds.toFixed(2)}s)`);
    if (out !== undefined) console.log(`checkpoint: ${out}`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`tessera quantize: ${e.message}\n\n${usage}`); return 2; }
    if (e instanceof TesseraError) { console.error(`tessera quantize: ${e.message}`); return 1; }
    throw e;
  }
}
