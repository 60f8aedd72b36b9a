// Turns the ```ts blocks of a Markdown page into runnable modules: `import ... from 'tessera'` points
// at the source tree, a line `expr; // => expected` asserts that expr equals the JS expression
// `expected` (tensors compare by their nested values, numbers within 1e-6 relative), and a line
// `expr; // throws: fragment` asserts that expr throws an error whose message contains fragment.
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const srcIndex = pathToFileURL(join(here, '..', '..', 'src', 'index.ts')).href;
const srcWebgpu = pathToFileURL(join(here, '..', '..', 'src', 'backend', 'webgpu', 'backend.ts')).href;

/** Whether a block uses the GPU backend (its page's test skips it where no WebGPU adapter starts). */
export function usesWebgpu(block: CodeBlock): boolean {
  return /['"]tessera\/webgpu['"]/.test(block.code);
}
const selfUrl = pathToFileURL(fileURLToPath(import.meta.url)).href;

export interface CodeBlock {
  /** 1-based line of the block's first code line in the Markdown file. */
  line: number;
  code: string;
}

export function codeBlocks(markdown: string, lang = 'ts'): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```' + lang) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j]!.trim() !== '```') j++;
    blocks.push({ line: start + 1, code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return blocks;
}

/** The module source for one block; `where` names the page for messages. */
export function toModule(block: CodeBlock, where: string): string {
  const out = [`import { expectValue as __expectValue, expectThrows as __expectThrows } from ${JSON.stringify(selfUrl)};`];
  block.code.split('\n').forEach((text, k) => {
    const at = JSON.stringify(`${where}:${block.line + k}`);
    const replaced = text.replace(/from\s+['"]tessera['"]/, `from ${JSON.stringify(srcIndex)}`)
      .replace(/(from\s+|import\s+)['"]tessera\/webgpu['"]/, (_m, lead: string) => `${lead}${JSON.stringify(srcWebgpu)}`);
    const value = /^(\s*)(.*);\s*\/\/ => (.*)$/.exec(replaced);
    const throws = /^(\s*)(.*);\s*\/\/ throws: (.*)$/.exec(replaced);
    if (value) out.push(`${value[1]}__expectValue(${value[2]}, ${value[3]}, ${at});`);
    else if (throws) out.push(`${throws[1]}__expectThrows(() => { ${throws[2]}; }, ${JSON.stringify(throws[3]!.trim())}, ${at});`);
    else out.push(replaced);
  });
  return out.join('\n');
}

function normalize(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && typeof (v as { toArray?: unknown }).toArray === 'function' && 'strides' in v) {
    return (v as unknown as { toArray(): unknown }).toArray();
  }
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  return v;
}

function same(a: unknown, b: unknown): boolean {
  a = normalize(a);
  b = normalize(b);
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
    if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
    return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  return Object.is(a, b);
}

export function expectValue(actual: unknown, expected: unknown, at: string): void {
  assert.ok(same(actual, expected), `${at}: got ${JSON.stringify(normalize(actual))}, the page says ${JSON.stringify(normalize(expected))}`);
}

export function expectThrows(fn: () => void, fragment: string, at: string): void {
  assert.throws(fn, (e: unknown) => e instanceof Error && e.message.includes(fragment), `${at}: should throw an error mentioning "${fragment}"`);
}
