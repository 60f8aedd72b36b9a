// `tessera export <checkpoint> --out model.onnx`: writes the model of a `tessera train` checkpoint
// as an ONNX file (onnx/export.ts), for onnxruntime and other ONNX runtimes. The example input is
// the first batch of the recipe's training data; the batch axis is dynamic, and a language model's
// sequence axis too where the model allows it (a GPT does; an LSTM unrolls one step per time step,
// so its length stays the example's). The file is written atomically, then read back by tessera's
// own importer and run on the example to check it.
import { defaultBackendName } from '../backend/default.js';
import { noGrad } from '../autodiff/mode.js';
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { saveFile } from '../io/file.js';
import { exportOnnx } from '../onnx/export.js';
import { OnnxModel } from '../onnx/model.js';
import { narrow } from '../ops/shape.js';
import { recipes } from '../train/recipes/index.js';
import { loadTaskForInference } from '../train/quantized-checkpoint.js';
import { numberOption, parseArgs, selectBackend, UsageError } from '../train/cli-options.js';

const usage = [
  'usage: tessera export <checkpoint dir or file> [--out FILE] [--batch N] [--static] [--opset N] [--backend NAME] [--json]',
  '',
  'Writes the checkpoint\'s model as ONNX (default FILE: model.onnx in the checkpoint\'s directory).',
  'The input is named "input" and the output "output"; the example is the first --batch rows (default 2)',
  'of the recipe\'s training data. Axes: batch dynamic, and a language model\'s sequence where the model',
  'allows it; --static keeps every size the example\'s. --opset: 13 to 21 (default 17).',
].join('\n');

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['out', 'batch', 'opset', 'backend'], ['static', 'json', 'help']);
    if (p.flags.has('help')) { console.log(usage); return 0; }
    const path = p.positional[0];
    if (path === undefined) throw new UsageError('give the checkpoint (the --out directory of `tessera train`, or its checkpoint.safetensors).');
    const batch = numberOption(p.values, 'batch', 2, 'integer');
    const opset = numberOption(p.values, 'opset', 17, 'integer');
    await selectBackend(p.values.get('backend') ?? defaultBackendName());
    const { task, saved, quantization } = await loadTaskForInference(recipes, path);
    if (quantization !== undefined) {
      throw new UsageError('this checkpoint was quantized by `tessera quantize`; export the float checkpoint it came from (quantized matmuls have no ONNX operator tessera writes).');
    }
    const model = task.model;
    model.eval();
    const example = exampleInput(task.loader as Iterable<Tensor[]>, batch);
    const fn = (x: Tensor): Tensor => model.call(x) as Tensor;
    const isLm = example.dtype === 'int32' && example.rank === 2;
    const attempts: { axes: Record<number, string>; note?: string }[] = p.flags.has('static')
      ? [{ axes: {} }]
      : isLm ? [{ axes: { 0: 'batch', 1: 'seq' } }, { axes: { 0: 'batch' }, note: 'the sequence length stays static: the model\'s graph changes with it (an unrolled recurrence)' }] : [{ axes: { 0: 'batch' } }];
    let bytes: Uint8Array | undefined;
    let used = attempts[0]!;
    for (const attempt of attempts) {
      try {
        bytes = exportOnnx(fn, [example], {
          module: model, inputNames: ['input'], outputNames: ['output'], opset,
          ...(Object.keys(attempt.axes).length > 0 ? { dynamicAxes: { input: attempt.axes } } : {}),
        });
        used = attempt;
        break;
      } catch (e) {
        if (!(e instanceof TesseraError) || attempt === attempts[attempts.length - 1] || !/changes with the size of 'seq'|with the size of 'seq'/.test(e.message)) throw e;
      }
    }
    const out = p.values.get('out') ?? defaultOut(path);
    await saveFile(out, bytes!);
    // Read the file back and run it on the example: the check a user would do next.
    const back = OnnxModel.load(bytes!);
    const got = noGrad(() => back.run({ input: example }).output!);
    const want = noGrad(() => fn(example));
    const diff = got.sub(want).abs().max().item();
    const dims = (shape: readonly (number | string | undefined)[]): string => `[${shape.map((d) => d ?? '?').join(', ')}]`;
    const summary = {
      recipe: saved.recipe, steps: saved.step, file: out, bytes: bytes!.length, opset,
      input: dims(back.inputs[0]!.shape ?? []), output: dims(back.outputs[0]!.shape ?? []),
      maxAbsDiff: diff, note: used.note,
    };
    if (p.flags.has('json')) { console.log(JSON.stringify(summary)); return 0; }
    console.log(`${saved.recipe} after ${saved.step} steps → ${out} (${(bytes!.length / 1024).toFixed(1)} KiB, opset ${opset})`);
    console.log(`input  ${example.dtype} ${summary.input}`);
    console.log(`output ${want.dtype} ${summary.output}`);
    if (used.note !== undefined) console.log(`note: ${used.note}`);
    console.log(`read back by tessera's importer: max |difference| ${diff.toExponential(2)} on the example`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`tessera export: ${e.message}\n\n${usage}`); return 2; }
    throw e;
  }
}

/** The first `rows` rows of the loader's first batch input. */
function exampleInput(loader: Iterable<Tensor[]>, rows: number): Tensor {
  for (const batch of loader) {
    const x = batch[0]!;
    if (x.shape[0]! < rows) throw new UsageError(`--batch ${rows} is more than the recipe's batch of ${x.shape[0]}.`);
    return narrow(x, 0, 0, rows).contiguous();
  }
  throw new UsageError('the recipe\'s training data is empty.');
}

function defaultOut(checkpoint: string): string {
  const dir = checkpoint.endsWith('.safetensors') ? checkpoint.slice(0, Math.max(0, checkpoint.lastIndexOf('/'))) || '.' : checkpoint;
  return `${dir.replace(/\/$/, '')}/model.onnx`;
}
