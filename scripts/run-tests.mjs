#!/usr/bin/env node
// Runs the compiled tests with Node's own runner: `unit` (beside the code, in packages/*/dist)
// or `e2e` (test/e2e, compiled to .test-dist; real server, real sandboxes).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const kind = process.argv[2];
const roots = kind === 'unit' ? readdirSync('packages').map((p) => join('packages', p, 'dist')) : kind === 'e2e' ? ['.test-dist/e2e'] : null;
if (!roots) {
  console.error('usage: run-tests.mjs unit|e2e [filter]');
  process.exit(2);
}
const filter = process.argv[3];
const files = [];
const walk = (dir) => {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (!filter || p.includes(filter))) files.push(p);
  }
};
roots.forEach(walk);
if (files.length === 0) {
  console.error(`no ${kind} test files found under ${roots.join(', ')} (did the build run?)`);
  process.exit(1);
}
// e2e files each start a real server with sandboxes: one file at a time on a 2-core machine.
const args = ['--test', `--test-concurrency=${kind === 'e2e' ? 1 : 4}`, '--test-reporter=spec', ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
