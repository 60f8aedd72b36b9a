// Command-line parsing shared by `tessera train`, `tessera eval` and `tessera generate`.
import { listBackends, setBackend } from '../backend/backend.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** `--name value`, `--name=value` and boolean `--flag`s, plus positional arguments. */
export function parseArgs(args: readonly string[], valued: readonly string[], flags: readonly string[]): { values: Map<string, string>; flags: Set<string>; positional: string[] } {
  const values = new Map<string, string>();
  const set = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h') { set.add('help'); continue; }
    if (!a.startsWith('--')) { positional.push(a); continue; }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (flags.includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} is a flag and takes no value.`);
      set.add(name);
    } else if (valued.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value.`);
      values.set(name, v);
    } else {
      throw new UsageError(`unknown option --${name}; known: ${[...valued, ...flags].map((o) => `--${o}`).join(' ')}.`);
    }
  }
  return { values, flags: set, positional };
}

export function numberOption(values: Map<string, string>, name: string, fallback: number, kind: 'integer' | 'positive' | 'non-negative integer' = 'positive'): number {
  const raw = values.get(name);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  const ok = kind === 'integer' ? Number.isInteger(v) : kind === 'positive' ? Number.isFinite(v) && v > 0 : Number.isInteger(v) && v >= 0;
  if (!ok) throw new UsageError(`--${name} must be ${kind === 'positive' ? 'a positive number' : kind === 'integer' ? 'an integer' : `a ${kind}`}, got '${raw}'.`);
  return v;
}

/** Selects a backend by name, loading src/backend/<name>/ first when it is not registered yet. */
export async function selectBackend(name: string): Promise<void> {
  let failure = '';
  if (!listBackends().includes(name) && /^[a-z0-9-]+$/.test(name)) {
    try {
      // A backend that is not loaded by default (webgpu) registers itself when its module loads.
      await import(`../backend/${name}/backend.js`);
    } catch (e) {
      failure = String(e).includes('Cannot find module') || String(e).includes('ERR_MODULE_NOT_FOUND') ? '' : `: ${String(e).split('\n')[0]}`;
    }
  }
  if (!listBackends().includes(name)) {
    throw new UsageError(failure !== '' ? `--backend ${name} could not start${failure}` : `--backend ${name}: no such backend (available: ${listBackends().join(', ')}, webgpu where a GPU adapter starts).`);
  }
  setBackend(name);
}
