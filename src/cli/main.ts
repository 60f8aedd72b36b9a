// The `tessera` command line. Each subcommand lives in its own file and is loaded lazily,
// so `tessera plan` never pays for loading the training stack and vice versa.

export type CommandModule = { run(args: string[]): Promise<number> };

/** Subcommand name → loader of its module. Add a line here for each new command file. */
const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  plan: { summary: 'plan a training run: memory, FLOPs, comms, pipelines, auto-parallel search', load: () => import('./plan.js') },
  advise: { summary: 'step-by-step advice on how to parallelize a model on a cluster', load: () => import('./advise.js') },
  run: { summary: 'launch the ranks of a distributed job on this node (like torchrun)', load: () => import('./run.js') },
  train: { summary: 'train a built-in recipe (mnist-mlp, mnist-cnn, char-gpt, ...) with progress, checkpoints and resume', load: () => import('./train.js') },
  eval: { summary: 'evaluate a checkpoint written by tessera train', load: () => import('./eval.js') },
  generate: { summary: 'sample text from a language-model checkpoint (char-gpt, char-lstm)', load: () => import('./generate.js') },
  export: { summary: 'write a checkpoint\'s model as an ONNX file (dynamic batch and sequence axes)', load: () => import('./export.js') },
  onnx: { summary: 'inspect an ONNX model, time it on made-up inputs, compare it with onnxruntime', load: () => import('./onnx.js') },
  quantize: { summary: 'quantize a checkpoint\'s Linear weights to int8/int4 and compare accuracy and size', load: () => import('./quantize.js') },
};

function usage(): string {
  const lines = ['usage: tessera <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands).sort()) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `tessera <command> --help` for the options of one command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    console.error(`tessera: unknown command '${name}'.\n\n${usage()}`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}
