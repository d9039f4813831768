'use strict';
/**
 * Transpiles one TypeScript file for run.sh, inside the sandbox, with the TypeScript copy that
 * ships in ../node/typescript (no network, no type check: types are erased, not verified).
 *
 *   node compile.cjs FILE.ts                  writes /tmp/sluice-ts/main.cjs (or main.mjs when
 *                                             the code awaits at top level), prints that path
 *   node compile.cjs --write-cache OUT        host side, once per server start: writes the V8
 *                                             code cache of typescript.js to OUT
 *
 * A syntax error prints `FILE:line:col - error TSnnnn: …` with the line and a caret on stderr
 * and exits 1. Output is CommonJS (so `import { progress } from 'sluice'` becomes a require and
 * `require` works too), ES2022, with an inline source map so stack traces name FILE's lines.
 *
 * Loading typescript.js (9 MB) costs ~400 ms; with the code cache that the server writes beside
 * this file (typescript.js.v8cache) it is ~130 ms. V8 refuses a cache made under other V8 flags,
 * which is why this runs in a node of its own without the heap flags of the program's node.
 */
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire } = require('node:module');

const TYPESCRIPT_JS = path.join(__dirname, '..', 'node', 'typescript', 'lib', 'typescript.js');
const CACHE_FILE = path.join(__dirname, 'typescript.js.v8cache');
const OUT_DIR = '/tmp/sluice-ts';

/** Loads typescript.js through vm.Script so V8 can use (or produce) a code cache. */
function loadTypeScript(cachedData) {
  const source = fs.readFileSync(TYPESCRIPT_JS, 'utf8');
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapper, { filename: TYPESCRIPT_JS, ...(cachedData ? { cachedData } : {}) });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(TYPESCRIPT_JS), mod, TYPESCRIPT_JS, path.dirname(TYPESCRIPT_JS));
  return { ts: mod.exports, script };
}

function readCache() {
  try {
    return fs.readFileSync(CACHE_FILE);
  } catch {
    return undefined;
  }
}

/** True when the code awaits outside any function (top-level await needs an ES module). */
function hasTopLevelAwait(ts, sourceFile) {
  let found = false;
  const visit = (node) => {
    if (found || ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return;
    if (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier !== undefined)) {
      found = true;
      return;
    }
    if (ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.AwaitUsing) === ts.NodeFlags.AwaitUsing) {
      found = true;
      return;
    }
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(sourceFile, visit);
  return found;
}

/** `FILE:line:col - error TSnnnn: message`, then the line and a caret under the column. */
function formatDiagnostic(ts, d, fileName, code) {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return `${fileName} - error TS${d.code}: ${message}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  const text = code.split(/\r\n|\r|\n/)[line] ?? '';
  const width = Math.max(1, Math.min(d.length ?? 1, text.length - character));
  return `${fileName}:${line + 1}:${character + 1} - error TS${d.code}: ${message}\n\n${line + 1} | ${text}\n${' '.repeat(String(line + 1).length)} | ${' '.repeat(character)}${'^'.repeat(width)}`;
}

function compile(fileName) {
  const cache = readCache();
  const { ts } = loadTypeScript(cache);
  const code = fs.readFileSync(fileName, 'utf8');
  const sourceFile = ts.createSourceFile(fileName, code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const esm = hasTopLevelAwait(ts, sourceFile);
  const out = ts.transpileModule(code, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: {
      module: esm ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      moduleDetection: ts.ModuleDetectionKind.Force,
      esModuleInterop: true,
      inlineSourceMap: true,
      // Stack traces then name the file the user wrote, not the compiled copy in /tmp.
      sourceRoot: `file://${path.dirname(fileName)}/`,
    },
  });
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    process.stderr.write(`${errors.map((d) => formatDiagnostic(ts, d, fileName, code)).join('\n\n')}\n`);
    process.exit(1);
  }
  fs.mkdirSync(OUT_DIR, { recursive: true, mode: 0o700 });
  const outFile = path.join(OUT_DIR, esm ? 'main.mjs' : 'main.cjs');
  fs.writeFileSync(outFile, out.outputText, { mode: 0o600 });
  process.stdout.write(`${outFile}\n`);
}

/** Host side: load without a cache, exercise transpile so its functions are compiled, save. */
function writeCache(outFile) {
  const { ts, script } = loadTypeScript(undefined);
  const sample = "import { progress } from 'sluice';\nconst n: number = 1;\nfor await (const x of [n]) progress(x, `${x}`);\nexport class A<T> { constructor(private t: T) {} }\n";
  const sf = ts.createSourceFile('sample.ts', sample, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  hasTopLevelAwait(ts, sf);
  for (const module of [ts.ModuleKind.CommonJS, ts.ModuleKind.ESNext]) {
    ts.transpileModule(sample, {
      fileName: 'sample.ts',
      reportDiagnostics: true,
      compilerOptions: { module, target: ts.ScriptTarget.ES2022, moduleDetection: ts.ModuleDetectionKind.Force, esModuleInterop: true, inlineSourceMap: true },
    });
  }
  fs.writeFileSync(outFile, script.createCachedData(), { mode: 0o644 });
}

/** Host side: exit 0 when V8 accepts the cache beside this file. */
function checkCache() {
  const cache = readCache();
  if (!cache) process.exit(1);
  const { script } = loadTypeScript(cache);
  process.exit(script.cachedDataRejected === false ? 0 : 1);
}

const [arg, value] = process.argv.slice(2);
if (arg === '--write-cache' && value) writeCache(value);
else if (arg === '--check-cache') checkCache();
else if (arg && !arg.startsWith('--')) compile(arg);
else {
  process.stderr.write('usage: compile.cjs FILE.ts | --write-cache OUT | --check-cache\n');
  process.exit(2);
}
