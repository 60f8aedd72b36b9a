// `tessera quantize <checkpoint>`: post-training weight quantization of a `tessera train` checkpoint.
// Evaluates the float model on the recipe's held-out data, quantizes its Linear layers
// (quant.quantizeModel, or quant.gptqQuantizeModel with --gptq / quant.awqQuantizeModel with --awq,
// calibrated on the first batches of the recipe's training data), evaluates again, prints both with the model sizes, and writes the
// quantized checkpoint (which `tessera eval` reads).
import { defaultBackendName } from '../backend/default.js';
import { TesseraError } from '../core/errors.js';
import { noGrad } from '../autodiff/mode.js';
import { recipes } from '../train/recipes/index.js';
import { loadTrainedTask, readCheckpoint } from '../train/trainer.js';
import { writeQuantizedCheckpoint } from '../train/quantized-checkpoint.js';
import { numberOption, parseArgs, selectBackend, UsageError } from '../train/cli-options.js';
import { formatQuantizeReport, quantizeModel, type QuantizeModelOptions, type QuantizeModelResult } from '../quant/quantize-model.js';
import { gptqQuantizeModel } from '../quant/gptq-model.js';
import { awqQuantizeModel } from '../quant/awq-model.js';
import { scope } from '../core/memory.js';
import type { Tensor } from '../core/tensor.js';
import type { AnyModule } from '../nn/module.js';
import type { Calibration, QuantScheme } from '../quant/scheme.js';
import type { EvalResult } from '../train/recipe.js';

const usage = [
  'usage: tessera quantize <checkpoint dir or file> --bits 8|4 [--scheme per-channel|per-tensor|group] [--group-size N]',
  '                        [--asymmetric] [--calibration minmax|percentile|mse] [--dynamic] [--out FILE] [--backend NAME] [--json]',
  '                        [--gptq [--calibration-batches N] [--act-order] [--damp F]]',
  '                        [--awq [--calibration-batches N] [--awq-grid N] [--awq-no-clip]]',
  '',
  'Quantizes the weights of every Linear layer of a `tessera train` checkpoint and reports the held-out',
  'accuracy (or loss) and model bytes before and after; --out writes the quantized checkpoint, which',
  '`tessera eval` evaluates. Defaults: --scheme per-channel (one scale per output feature), symmetric,',
  'min/max calibration; --scheme group uses --group-size (default 32) consecutive input features per scale.',
  '--dynamic also quantizes each layer\'s input per row to int8 on the fly (int8 × int8 → int32 kernels;',
  'needs --bits 8, symmetric, per-channel or per-tensor).',
  '--gptq rounds with GPTQ instead of to nearest: each layer\'s rounding errors are compensated on its inputs,',
  'collected by running the model on the first --calibration-batches N (default 16) batches of the recipe\'s',
  'training data, layer after layer; --act-order rounds input features by decreasing input energy, --damp F',
  'adds F × mean(diag H) to the Hessian (default 0.01). The table then shows each layer\'s relative output',
  'error ||WX − ŴX||² / ||WX||² on the calibration inputs for round-to-nearest and for GPTQ.',
  '--awq rounds with AWQ instead: each layer\'s input features get scales s = a^α from their mean magnitude a',
  'on the same calibration batches, α searched over --awq-grid N values i/N (default 20) for the smallest',
  'output error, the weight quantized as W·diag(s) and the layer\'s input multiplied by 1/s; then each',
  'group\'s range is clipped where that lowers the output error (--awq-no-clip skips this). The table shows',
  'the output errors for round-to-nearest and for AWQ, and each layer\'s α. --gptq and --awq exclude each other.',
].join('\n');

function describe(r: EvalResult): string {
  if (r.testAccuracy !== undefined) return `test accuracy ${(100 * r.testAccuracy).toFixed(2)}%` + (r.testLoss !== undefined ? `  test loss ${r.testLoss.toFixed(4)}` : '');
  if (r.valLoss !== undefined) return `validation loss ${r.valLoss.toFixed(4)} nats/token`;
  return 'no metric';
}

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['bits', 'scheme', 'group-size', 'calibration', 'out', 'backend', 'calibration-batches', 'damp', 'awq-grid'],
      ['asymmetric', 'dynamic', 'json', 'help', 'gptq', 'act-order', 'awq', 'awq-no-clip']);
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
    const gptq = p.flags.has('gptq');
    const awq = p.flags.has('awq');
    if (gptq && awq) throw new UsageError('--gptq and --awq are two ways of rounding the same weights; give one of them.');
    if (!gptq && (p.values.has('damp') || p.flags.has('act-order'))) throw new UsageError('--act-order and --damp go with --gptq.');
    if (!awq && (p.values.has('awq-grid') || p.flags.has('awq-no-clip'))) throw new UsageError('--awq-grid and --awq-no-clip go with --awq.');
    if (!gptq && !awq && p.values.has('calibration-batches')) throw new UsageError('--calibration-batches goes with --gptq or --awq (round to nearest needs no calibration data).');
    const awqGrid = numberOption(p.values, 'awq-grid', 20, 'integer');
    if (awqGrid < 1) throw new UsageError(`--awq-grid must be at least 1 (the number of exponents α = i/N tried), got ${awqGrid}.`);
    const awqClip = !p.flags.has('awq-no-clip');
    if (awq && awqClip && calibration !== 'minmax') {
      throw new UsageError(`--awq clips each group's range itself, which needs --calibration minmax; with --calibration ${calibration} add --awq-no-clip.`);
    }
    const calibrationBatches = numberOption(p.values, 'calibration-batches', 16, 'integer');
    if (calibrationBatches < 1) throw new UsageError(`--calibration-batches must be at least 1, got ${calibrationBatches}.`);
    const damp = Number(p.values.get('damp') ?? 0.01);
    if (!(Number.isFinite(damp) && damp >= 0)) throw new UsageError(`--damp must be a number ≥ 0 (a fraction of the mean Hessian diagonal), got '${p.values.get('damp')}'.`);
    await selectBackend(p.values.get('backend') ?? defaultBackendName());

    if ((await readCheckpoint(path) as unknown as { quantization?: unknown }).quantization !== undefined) {
      throw new UsageError('this checkpoint is already quantized; quantize the float checkpoint it came from.');
    }
    const { task, saved } = await loadTrainedTask(recipes, path);
    let started = performance.now();
    const before = noGrad(() => task.evaluate());
    const floatSeconds = (performance.now() - started) / 1000;
    let result: QuantizeModelResult<AnyModule>;
    let calibrationRecords = 0, calibrationUsed = 0;
    started = performance.now();
    if (gptq || awq) {
      // Calibration: the first batches of the training data, in the loader's order for epoch 0.
      const batches: Tensor[][] = [];
      for await (const batch of task.loader) {
        batches.push(batch);
        calibrationRecords += batch[0]!.shape[0]!;
        if (batches.length >= calibrationBatches) break;
      }
      calibrationUsed = batches.length;
      const calibrate = () => { for (const b of batches) scope(() => { task.lossOf(b); }); };
      result = gptq
        ? gptqQuantizeModel(task.model, calibrate, { ...options, actOrder: p.flags.has('act-order'), dampening: damp })
        : awqQuantizeModel(task.model, calibrate, { ...options, grid: awqGrid, clip: awqClip });
      for (const b of batches) for (const x of b) x.dispose();
    } else {
      result = quantizeModel(task.model, options);
    }
    const quantizeSeconds = (performance.now() - started) / 1000;
    const { model, report } = result;
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
      method: gptq ? 'gptq' : awq ? 'awq' : 'rtn',
      ...(gptq ? { calibrationBatches: calibrationUsed, calibrationRecords, actOrder: p.flags.has('act-order'), damp } : {}),
      ...(awq ? { calibrationBatches: calibrationUsed, calibrationRecords, awqGrid, clip: awqClip } : {}),
      float: before, quantized: after, floatSeconds, quantizedSeconds: quantSeconds, quantizeSeconds,
      modelBytesBefore: report.modelBytesBefore, modelBytesAfter: report.modelBytesAfter, layers: report.layers,
      ...(out === undefined ? {} : { checkpoint: out }),
    };
    if (p.flags.has('json')) {
      console.log(JSON.stringify(summary));
      return 0;
    }
    const how = `${bits}-bit ${options.symmetric ? 'symmetric' : 'affine'} ${scheme}${scheme === 'group' ? ` (groups of ${options.groupSize})` : ''}, ${calibration} calibration${dynamic ? ', dynamic int8 activations' : ''}` +
      (gptq ? `, GPTQ on ${calibrationUsed} training batches (${calibrationRecords} records)${p.flags.has('act-order') ? ', act-order' : ''} (${quantizeSeconds.toFixed(2)}s)` : '') +
      (awq ? `, AWQ on ${calibrationUsed} training batches (${calibrationRecords} records), ${awqGrid} exponents${awqClip ? ', clip search' : ''} (${quantizeSeconds.toFixed(2)}s)` : '');
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
