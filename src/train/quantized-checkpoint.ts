// Quantized training checkpoints: what `tessera quantize` writes and `tessera eval` reads.
//
// The file is a training checkpoint (recipe, options, step, model) whose model state dict holds the
// quantized layers' codes and scales, plus a `quantization` entry (the QuantizationConfig: which
// Linear layers, how). It has no optimizer, schedule or data-loader state: it is for inference, not
// for --resume. Loading rebuilds the recipe's float model, swaps the listed layers for
// QuantizedLinear ones (quant.prepareQuantized) and loads the state dict.
import type { Tensor } from '../core/tensor.js';
import type { AnyModule } from '../nn/module.js';
import { saveState, type StateTree } from '../io/checkpoint.js';
import { prepareQuantized, quantizationConfig, type QuantizationConfig } from '../quant/checkpoint.js';
import type { Recipe, TrainTask } from './recipe.js';
import { buildTask, loadTrainedTask, readCheckpoint } from './trainer.js';

/** Loads a checkpoint for evaluation, float or quantized; the task's model is in eval mode. */
export async function loadTaskForInference(recipes: Record<string, Recipe>, pathOrDir: string):
  Promise<{ task: TrainTask; saved: { recipe: string; step: number }; quantization: QuantizationConfig | undefined }> {
  const saved = await readCheckpoint(pathOrDir);
  const quantization = (saved as unknown as { quantization?: QuantizationConfig }).quantization;
  if (quantization === undefined) {
    const { task } = await loadTrainedTask(recipes, pathOrDir);
    return { task, saved, quantization };
  }
  const recipe = recipes[saved.recipe];
  if (recipe === undefined) throw new Error(`the checkpoint was written by recipe '${saved.recipe}', which this version does not know (known: ${Object.keys(recipes).join(', ')}).`);
  const task = await buildTask(recipe, saved.options);
  const model = prepareQuantized(task.model, quantization);
  if (model !== task.model) throw new Error(`the checkpoint quantizes the recipe's whole model as one layer; tessera eval cannot rebuild that task.`);
  task.model.loadStateDict(saved.model);
  task.model.eval();
  return { task, saved, quantization };
}

/** Writes a quantized model of a recipe as an inference checkpoint (see the module comment). */
export async function writeQuantizedCheckpoint(path: string, source: { recipe: string; options: unknown; step: number }, model: AnyModule,
  extra: Record<string, StateTree> = {}): Promise<void> {
  const state = {
    recipe: source.recipe,
    options: source.options as StateTree,
    step: source.step,
    model: model.stateDict() as Map<string, Tensor>,
    quantization: quantizationConfig(model) as unknown as StateTree,
    ...extra,
  };
  await saveState(path, state, { recipe: source.recipe, quantized: 'true' });
}
