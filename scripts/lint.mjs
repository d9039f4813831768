#!/usr/bin/env node
// House-style checks the type checker cannot make (STYLE.md): no `any`, no focused tests,
// the protocol package stays free of Node APIs, library code does not print with console.log (the CLI and the example programs may).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const problems = [];
const walk = (dir, out = []) => {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
};
const files = [...walk('packages'), ...walk('test')];
for (const file of files) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const isTest = file.endsWith('.test.ts') || file.startsWith('test/');
  lines.forEach((line, i) => {
    const at = `${file}:${i + 1}`;
    const code = line.replace(/\/\/.*$/, '').replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''");
    if (/(:\s*any\b|\bas\s+any\b|<any>|any\[\])/.test(code)) problems.push(`${at}: \`any\` is not allowed; use unknown and narrow it`);
    if (/\b(test|it|describe)\.only\(/.test(code)) problems.push(`${at}: focused test (.only) left in`);
    if (/@ts-ignore/.test(line)) problems.push(`${at}: @ts-ignore hides errors; fix the type instead`);
    if (!isTest && file.startsWith('packages/protocol/') && /from\s+['"]node:/.test(line)) {
      problems.push(`${at}: the protocol package must use web-standard APIs only`);
    }
    if (!isTest && !file.startsWith('packages/cli/') && !file.startsWith('packages/sdk/examples/') && /console\.log\(/.test(code)) problems.push(`${at}: use the logger, not console.log`);
  });
}
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`lint: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`lint: ${files.length} files clean`);
