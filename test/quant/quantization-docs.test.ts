// Executes the ```ts examples of docs/quantization.md (see test/helpers/doc-examples.ts): each must
// run and every `// => value` and `// throws:` annotation must hold.
import { it, after } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { codeBlocks, toModule } from '../helpers/doc-examples.js';

const page = 'docs/quantization.md';
const dir = mkdtempSync(join(tmpdir(), 'tessera-quant-docs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const blocks = codeBlocks(readFileSync(page, 'utf8'));

it('docs/quantization.md has examples', () => assert.ok(blocks.length >= 3));
blocks.forEach((block, i) => {
  it(`docs/quantization.md example ${i + 1} (line ${block.line})`, async () => {
    const file = join(dir, `quantization_${i}.mts`);
    writeFileSync(file, toModule(block, page));
    await import(pathToFileURL(file).href);
  });
});
