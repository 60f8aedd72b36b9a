#!/usr/bin/env node
// The `tessera` command: a thin launcher for the compiled CLI (built by `npm ci` / `npm run build`).
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => process.exit(typeof code === 'number' ? code : 0),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
