#!/usr/bin/env node
// Builds the browser bundle of the SDK: dist/sluice.browser.js, one minified ES module with
// @sluice/protocol inlined and no Node built-ins (esbuild fails the build if any sneak in).
// Runs after `tsc -b` (the root `npm run build`), from the compiled dist/index.js.
import { build } from 'esbuild';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'sluice.browser.js');

await build({
  entryPoints: [join(root, 'dist', 'index.js')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const bytes = statSync(outfile).size;
const gzipped = gzipSync(readFileSync(outfile)).length;
process.stdout.write(`sdk: browser bundle ${outfile.slice(root.length + 1)} ${(bytes / 1024).toFixed(1)} KiB (${(gzipped / 1024).toFixed(1)} KiB gzipped)\n`);
