// Executes the ```ts examples of docs/tensors.md, docs/autodiff.md and README.md: each block must run, and
// every `// => value` and `// throws: message` annotation must hold (see test/helpers/doc-examples.ts).
import { describe, it, after } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { codeBlocks, toModule } from '../helpers/doc-examples.js';

const pages = ['docs/tensors.md', 'docs/autodiff.md', 'README.md'];
const dir = mkdtempSync(join(tmpdir(), 'tessera-docs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const page of pages) {
  describe(page, () => {
    const blocks = codeBlocks(readFileSync(page, 'utf8'));
    it('has examples', () => assert.ok(blocks.length >= 3, `${page} should show its model with examples`));
    blocks.forEach((block, i) => {
      it(`example ${i + 1} (line ${block.line})`, async () => {
        const file = join(dir, `${page.replace(/\W/g, '_')}_${i}.mts`);
        writeFileSync(file, toModule(block, page));
        await import(pathToFileURL(file).href);
      });
    });
  });
}
