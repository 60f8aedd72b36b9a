// Executes the ```ts examples of docs/tensors.md, docs/autodiff.md, docs/webgpu.md, docs/quantization.md,
// docs/mixed-precision.md and README.md: each block
// must run, and every `// => value` and `// throws: message` annotation must hold (see
// test/helpers/doc-examples.ts). Blocks that use 'tessera/webgpu' are skipped where no WebGPU adapter
// starts (TESSERA_TEST_WEBGPU=1, as in CI, makes that a failure).
import { describe, it, after } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { codeBlocks, toModule, usesWebgpu } from '../helpers/doc-examples.js';
import { backendsUnderTest } from '../helpers/backends.js';

const pages = ['docs/tensors.md', 'docs/autodiff.md', 'docs/webgpu.md', 'docs/quantization.md', 'docs/mixed-precision.md', 'docs/onnx.md', 'README.md'];
const webgpu = backendsUnderTest().includes('webgpu') || process.env.TESSERA_TEST_WEBGPU === '1';
const dir = mkdtempSync(join(tmpdir(), 'tessera-docs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const page of pages) {
  describe(page, () => {
    const blocks = codeBlocks(readFileSync(page, 'utf8'));
    it('has examples', () => assert.ok(blocks.length >= (page === 'docs/webgpu.md' ? 1 : 3), `${page} should show its model with examples`));
    blocks.forEach((block, i) => {
      const skip = usesWebgpu(block) && !webgpu ? 'no WebGPU adapter here' : false;
      it(`example ${i + 1} (line ${block.line})`, { skip }, async () => {
        const file = join(dir, `${page.replace(/\W/g, '_')}_${i}.mts`);
        writeFileSync(file, toModule(block, page));
        await import(pathToFileURL(file).href);
      });
    });
  });
}
