#!/usr/bin/env node
// House-style checks the type checker cannot make (docs/development.md): no `any`, no focused tests,
// the protocol package stays free of Node APIs, library code does not print with console.log (the CLI and the example programs may),
// and no module imports itself back through others (an import cycle), within a package or across them.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

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
problems.push(...importCycles(files.filter((f) => f.startsWith('packages/') && f.includes('/src/'))));

/**
 * Value imports only: `import type` and `export type` are erased and cannot form a cycle at run
 * time. `@sluice/<pkg>` resolves to that package's src/index.ts, relative paths to the .ts file.
 */
function importCycles(sources) {
  const graph = new Map();
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    const deps = [];
    const re = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m[2]) continue;
      const clause = m[3] ?? '';
      // `import { type A, type B } from` brings in types only.
      const names = /^\{([^}]*)\}$/.exec(clause.trim());
      if (names && names[1].split(',').every((n) => n.trim() === '' || /^type\s/.test(n.trim()))) continue;
      const spec = m[4] ?? m[5];
      let target = null;
      const pkg = /^@sluice\/([a-z-]+)$/.exec(spec);
      if (pkg) target = `packages/${pkg[1]}/src/index.ts`;
      else if (spec.startsWith('.')) target = normalize(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      if (target && existsSync(target)) deps.push(target);
    }
    graph.set(file, deps);
  }
  const found = [];
  const state = new Map(); // 1: on the stack, 2: done
  const stack = [];
  const visit = (f) => {
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 1) found.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].join(' → ')}`);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`lint: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`lint: ${files.length} files clean`);
