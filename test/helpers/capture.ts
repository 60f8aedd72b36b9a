// Runs a CLI command's `run` with console.log/console.error captured, for tests of the `tessera` commands.

export async function captureOutput(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try { return { code: await fn(), out: out.join('\n'), err: err.join('\n') }; } finally { console.log = log; console.error = error; }
}
