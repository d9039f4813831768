#!/usr/bin/env node
// Runs the compiled tests with Node's own runner: `unit` (beside the code, in packages/*/dist)
// or `e2e` (test/e2e, compiled to .test-dist; real server, real sandboxes).
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
// The tests' temporary files (and the servers', the compilers'…) go to a directory of this run's
// own: whatever is still in it at the end was leaked, and fails the run, even while other runs
// share /tmp. 0711: the sandboxes' uid must traverse it to reach the data dirs below.
const tmp = mkdtempSync(join(tmpdir(), `sluice-tests-${kind}-`));
chmodSync(tmp, 0o711);
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, TMPDIR: tmp } });
let status = r.status ?? 1;
const left = readdirSync(tmp);
if (left.length > 0) {
  console.error(`\nthe tests left ${left.length} temporary file(s) behind in ${tmp}: ${left.join(', ')}`);
  if (status === 0) status = 1;
}
try {
  rmSync(tmp, { recursive: true, force: true });
} catch (err) {
  console.error(`could not remove ${tmp}: ${err.message}`);
}
process.exit(status);
