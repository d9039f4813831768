#!/usr/bin/env node
// Builds the playground into dist/public: app-[hash].js (the page's code with @sluice/sdk and
// CodeMirror bundled in: nothing is loaded from another origin), app-[hash].css, and
// index.html naming both. Runs after `tsc -b` (the root `npm run build`), from the compiled
// dist/js/main.js; the server serves dist/public (packages/server http/web-routes.ts).
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'public');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: { app: join(root, 'dist', 'js', 'main.js'), style: join(root, 'static', 'app.css') },
  outdir: out,
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: process.env.WEB_NO_MINIFY !== "1",
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => /^app-.*\.js$/.test(n));
const css = outputs.find((n) => /^style-.*\.css$/.test(n));
if (!js || !css) throw new Error(`web: the bundle has no app script or style sheet: ${outputs.join(', ')}`);
// The empty script entry the CSS came with is dropped: the page loads only what it needs.
for (const n of outputs) if (/^style-.*\.js(\.map)?$/.test(n)) rmSync(join(out, n));
const html = readFileSync(join(root, 'static', 'index.html'), 'utf8').replaceAll('{{app.js}}', js).replaceAll('{{app.css}}', css);
writeFileSync(join(out, 'index.html'), html);

const size = (n) => readFileSync(join(out, n));
process.stdout.write(`web: dist/public/${js} ${(size(js).length / 1024).toFixed(1)} KiB (${(gzipSync(size(js)).length / 1024).toFixed(1)} KiB gzipped), ${css}, index.html\n`);
