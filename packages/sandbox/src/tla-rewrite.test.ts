/**
 * The JavaScript kernel's top-level await rewriter (runtime/kernels/tla-rewrite.js), on its own:
 * each cell is rewritten, then run in a vm context of its own, and its effects checked (globals,
 * the returned completion value, imports), as the kernel runs it. The kernel around it is tested
 * in kernels.test.ts and test/e2e/kernels.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const RUNTIME_SOURCE = fileURLToPath(new URL('../runtime', import.meta.url));

interface Token {
  t: 'name' | 'num' | 'str' | 'tpl' | 're' | 'punct';
  v: string;
  s: number;
  e: number;
  nl: boolean;
  d: number;
  m: number;
}

interface TLARewrite {
  asyncWrap(src: string, withReturn: boolean): string | null;
  tokenize(src: string): Token[];
}

const { asyncWrap, tokenize } = createRequire(import.meta.url)(join(RUNTIME_SOURCE, 'kernels', 'tla-rewrite.js')) as TLARewrite;

// The kernel's loader for import() in cells; Node warns once that it is experimental.
const emitWarning = process.emitWarning.bind(process) as (warning: string | Error, ...rest: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(warning).includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;
const OPTIONS = { filename: '<cell>', importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER };

/** Cells sharing one global scope, as the kernel's do (in a context of their own here). */
class Cells {
  readonly context = vm.createContext({});

  /** Rewrites `src` (it must be rewritten), runs it and returns the value it completes with. */
  async run(src: string, withReturn = true): Promise<unknown> {
    const rewritten = asyncWrap(src, withReturn);
    assert.notEqual(rewritten, null, `the rewriter gave up on ${JSON.stringify(src)}`);
    const value: unknown = new vm.Script(rewritten ?? '', OPTIONS).runInContext(this.context);
    // Values from the context are of its realm: structuredClone makes them comparable here.
    return structuredClone(await value);
  }

  /** A plain script in the same global scope: what a later cell without await sees. */
  async plain(src: string): Promise<unknown> {
    const value: unknown = new vm.Script(src, OPTIONS).runInContext(this.context);
    return structuredClone(await value);
  }
}

test('top-level await in expressions and statements', async () => {
  const c = new Cells();
  assert.equal(await c.run('await 1'), 1);
  assert.equal(await c.run('(await Promise.resolve({ v: 5 })).v * 2'), 10);
  assert.equal(await c.run('const a = await Promise.resolve(2); a * 3'), 6);
  assert.equal(await c.run('let total = 0; for (const x of [1, 2, 3]) total += await Promise.resolve(x); total'), 6);
  assert.equal(await c.run('let hit = 0; if (await Promise.resolve(true)) { hit = 1 } hit'), 1);
  assert.equal(await c.run('let caught; try { await Promise.reject(new Error("no")) } catch (e) { caught = e.message } caught'), 'no');
  assert.equal(await c.run('await new Promise((resolve) => Promise.resolve().then(() => resolve("later")))'), 'later');
  assert.equal(await c.plain('a + total + hit'), 2 + 6 + 1);
});

test('let, const, var, function and class declarations become globals', async () => {
  const c = new Cells();
  const cell = [
    'let x = 1',
    'const y = await Promise.resolve(2)',
    'var z = 3',
    'function f() { return x + y + z }',
    'async function af() { return "af" }',
    'function* gen() { yield 1; yield 2 }',
    'class C { m() { return "m" } }',
    'class D extends C {}',
  ].join('\n');
  assert.equal(await c.run(cell), undefined, 'a declaration last: no value');
  assert.equal(await c.plain('f()'), 6);
  assert.equal(await c.plain('af()'), 'af');
  assert.deepEqual(await c.plain('[...gen()]'), [1, 2]);
  assert.equal(await c.plain('new D().m()'), 'm');
  assert.equal(await c.plain('new D() instanceof C'), true);
  // Declared again in a later cell: a plain script would fail on `let x` twice; globals do not.
  assert.equal(await c.run('let x = await Promise.resolve(10); const y = 20; f()'), 10 + 20 + 3);
  // A function is hoisted (published before the body runs), as a declaration is.
  assert.equal(await c.run('const early = later(); function later() { return 7 } await 0; early'), 7);
  // Without an initialiser let is undefined again, var keeps a value it had.
  await c.plain('var kept = 5; var reset = 5');
  await c.run('var kept; let reset, fresh; await 0');
  assert.equal(await c.plain('kept'), 5);
  assert.equal(await c.plain('reset'), undefined);
  assert.equal(await c.plain('"fresh" in globalThis'), true);
  // Several declarators, with await in the middle one.
  assert.deepEqual(await c.run('let m = 1, n = await Promise.resolve(2), o; [m, n, o]'), [1, 2, undefined]);
  assert.equal(await c.run('let w1 = 5, w2 = Math.max(1, w1, 2); await 0; w2'), 5, 'a comma inside a call separates no declarators');
});

test('destructuring declarations', async () => {
  const c = new Cells();
  await c.run('const { a, b: [c, d = 4], ...rest } = await Promise.resolve({ a: 1, b: [3], e: 5, f: 6 })');
  assert.deepEqual(await c.plain('[a, c, d, rest]'), [1, 3, 4, { e: 5, f: 6 }]);
  await c.run('let [p, , q = "q", ...more] = await Promise.resolve([1, 2, undefined, 4, 5])');
  assert.deepEqual(await c.plain('[p, q, more]'), [1, 'q', [4, 5]]);
  await c.run('var { nested: { deep } } = { nested: { deep: await Promise.resolve("deep") } }');
  assert.equal(await c.plain('deep'), 'deep');
});

test('import declarations become dynamic imports; import() and import.meta stay', async () => {
  const c = new Cells();
  assert.equal(await c.run("import path from 'node:path'; path.join('a', 'b')"), 'a/b');
  assert.equal(await c.plain("path.basename('/x/y')"), 'y', 'the default import is a global');
  assert.equal(await c.run("import { join as j, basename } from 'node:path'\nj('x', basename('/y/z'))"), 'x/z');
  assert.equal(await c.plain('typeof j + typeof basename + typeof join'), 'functionfunctionundefined');
  assert.equal(await c.run("import * as os from 'node:os'; typeof os.platform"), 'function');
  assert.equal(await c.run("import def, * as ns from 'node:path'; def === ns.default"), true);
  assert.equal(await c.run("import p2, { sep } from 'node:path'; p2.sep === sep"), true);
  assert.equal(await c.run(`import data from 'data:application/json,{"n":1}' with { type: 'json' }; data.n`), 1);
  // A side-effect import runs the module (in the main realm: that is where the loader is).
  const key = `sluiceTLA${process.pid}`;
  const g = globalThis as Record<string, unknown>;
  assert.equal(await c.run(`import 'data:text/javascript,globalThis.${key}%3D42'; 'imported'`), 'imported');
  assert.equal(g[key], 42);
  delete g[key];
  assert.equal(await c.run("const m = await import('node:path'); m.sep"), '/');
  const kept = asyncWrap("const u = await import('node:url'); typeof import.meta", true);
  assert.ok(kept?.includes("await import('node:url')") && kept.includes('import.meta'), String(kept));
});

test('the completion value: the last expression statement, with or without its semicolon', async () => {
  const c = new Cells();
  assert.equal(await c.run('await 0; 1; 2; 3'), 3);
  assert.equal(await c.run('await 0; "last";'), 'last');
  assert.equal(await c.run('const arr = await Promise.resolve([1, 2])\narr\n  .map((v) => v * 2)\n  .join(",")'), '2,4');
  assert.deepEqual(await c.run('await 0\n;({ k: "v" })'), { k: 'v' });
  assert.equal(await c.run('await 0; let notAValue = 1'), undefined);
  assert.equal(await c.run('await 0; if (true) { 5 }'), undefined, 'only an expression statement is returned');
  assert.equal(await c.run('await 0; 9', false), undefined, 'without withReturn nothing is returned');
});

test('strings, templates, regular expressions and comments are not code', async () => {
  const c = new Cells();
  assert.equal(await c.run(`const s = 'let a = await 1; import x from "y"'; await 0; s`), 'let a = await 1; import x from "y"');
  assert.equal(await c.run('const dq = "}{\\"\'`"; await 0; dq'), '}{"\'`');
  // Templates nest, and a `}` of an object literal inside ${} does not end the substitution.
  assert.equal(await c.run('const t = `a${`b${await Promise.resolve("c")}d`}e`; t'), 'abcde');
  assert.equal(await c.run('const t2 = `x${ { k: "v" }.k }y${"}"}`; await 0; t2'), 'xvy}');
  assert.equal(await c.run('const multi = `line 1\nlet notDeclared = 1\n${await 2}`\nmulti'), 'line 1\nlet notDeclared = 1\n2');
  assert.equal(await c.plain('typeof notDeclared'), 'undefined');
  // A regular expression where a value may start; division after a value.
  assert.equal(await c.run('const hits = ["{", "`", "x"].filter((ch) => /[{`\'"]/.test(ch)).length; await 0; hits'), 2);
  assert.equal(await c.run("const re = /\\/ await [/]x/g; await 0; re.source"), '\\/ await [/]x');
  assert.equal(await c.run('const half = (8) / 2 / 2, idx = [8][0] / 4, n2 = 6\n/ 3; await 0; [half, idx, n2].join()'), '2,2,2');
  assert.equal(await c.run('let r2 = await Promise.resolve("a/b/c"); r2.split(/\\//).length'), 3);
  // Comments that look like declarations, imports or awaits.
  const commented = [
    '// let hidden = await 1',
    "/* const also = 1; import z from 'nope'",
    '   await forever */',
    'const shown = await Promise.resolve(1) // trailing { comment',
    'shown /* done */',
  ].join('\n');
  assert.equal(await c.run(commented), 1);
  assert.equal(await c.plain('typeof hidden + typeof also + typeof z'), 'undefinedundefinedundefined');
});

test('statements without semicolons (automatic semicolon insertion)', async () => {
  const c = new Cells();
  assert.equal(await c.run('let a1 = 1\nlet b1 = await Promise.resolve(a1 + 1)\nb1'), 2);
  assert.equal(await c.run('function g2() { return 1 }\nconst v2 = await g2()\nv2'), 1);
  assert.equal(await c.run('if (true) { var inIf = 1 }\nconst after = await Promise.resolve(inIf + 1)\nafter'), 2);
  assert.equal(await c.run('let cnt = 0\ncnt++\nawait 0\ncnt'), 1);
  assert.equal(await c.run('const o = { a: 1,\n  b: 2 }\nawait 0\no.a + o.b'), 3);
  assert.equal(await c.run('const k = () => { return 3 }\nconst k2 = await k()\nk2'), 3);
  assert.equal(await c.run('class K {\n  m() { return 4 }\n}\nconst k3 = await new K().m()\nk3'), 4);
  assert.equal(await c.run('const sum = 1\n  + await Promise.resolve(2)\nsum'), 3, 'a line that starts with an operator continues');
  assert.equal(await c.run('const isArr = await Promise.resolve([])\n  instanceof Object\nisArr'), true);
  assert.equal(await c.run('const list = [1,\n2]\nawait 0\nlist.length'), 2);
  assert.equal(await c.run('label: for (const i of [1, 2]) { if (i === 1) continue label }\nconst lab = await 4\nlab'), 4);
});

// Known gap, left as it is (this suite came with a refactor that changes no behaviour): a
// closing bracket at the start of a line is taken for the start of a new statement, so a
// declaration whose `}` or `]` stands on its own line (an object, an array, an arrow function's
// body) is cut short and its rewrite does not compile; the kernel then runs the cell in a plain
// async wrapper, where its declarations stay local and its value is not shown. The fix: a
// closer never starts a statement (lineBreakEnds).
test('a declaration whose closing bracket stands on its own line', async () => {
  const c = new Cells();
  assert.equal(await c.run('const o = {\n  a: 1\n}\nawait 0\no.a'), 1);
  assert.equal(await c.run('let list = [\n  1,\n  2\n]\nawait 0\nlist.length'), 2);
  assert.equal(await c.run('const k = async () => {\n  return 3\n}\nawait k()'), 3);
});

test('what it leaves alone', async () => {
  const c = new Cells();
  // Declarations inside blocks and functions are not top-level: they stay where they are.
  await c.run('{ let inner = 1 }\nfunction outer() { let local = 2; return local }\nawait 0');
  assert.equal(await c.plain('typeof inner + typeof local + typeof outer'), 'undefinedundefinedfunction');
  // export is not rewritten (V8 then rejects the cell, as it would a script).
  assert.ok(asyncWrap('export const e = 1; await 0', true)?.includes('export const e = 1'));
  // The wrapper keeps the cell's first line, so stack line numbers stay right.
  const src = 'const line = await 1\nconst where = new Error().stack.split("\\n")[1]\nwhere';
  assert.match(String(await c.run(src)), /<cell>:2:/);
});

test('shapes it gives up on: null', () => {
  for (const src of [
    "import { 'quoted' } from 'node:path'",
    "import * from 'node:path'",
    "import * as from 'node:path'",
    "import x from 'node:path' extra",
    'import x from',
    'import { a as } from "m"',
    'class Broken\nawait 0',
  ]) {
    assert.equal(asyncWrap(src, true), null, src);
  }
});

test('tokenize: the kinds of tokens, bracket depths and matching closers', () => {
  const brief = (src: string): string[] => tokenize(src).map((t) => `${t.t}:${t.v}`);
  assert.deepEqual(brief('a / b / c'), ['name:a', 'punct:/', 'name:b', 'punct:/', 'name:c']);
  assert.deepEqual(brief('x = /re[/]/g'), ['name:x', 'punct:=', 're:/re[/]/g']);
  assert.deepEqual(brief('return /x/'), ['name:return', 're:/x/']);
  assert.deepEqual(brief('0x1f + 1_000n + .5e-3'), ['num:0x1f', 'punct:+', 'num:1_000n', 'punct:+', 'num:.5e-3']);
  assert.deepEqual(brief('a?.b ?? c?.[0] >>>= 1'), ['name:a', 'punct:?.', 'name:b', 'punct:??', 'name:c', 'punct:?.', 'punct:[', 'num:0', 'punct:]', 'punct:>>>=', 'num:1']);
  assert.deepEqual(brief('#!/usr/bin/env node\nx'), ['name:x']);
  const toks = tokenize('`a${ {b: `c${d}`} }e` // tail');
  assert.deepEqual(
    toks.map((t) => [t.t, t.v, t.d]),
    [
      ['tpl', '`a${', 0],
      ['punct', '{', 1],
      ['name', 'b', 2],
      ['punct', ':', 2],
      ['tpl', '`c${', 2],
      ['name', 'd', 3],
      ['tpl', '}`', 2],
      ['punct', '}', 1],
      ['tpl', '}e`', 0],
    ],
  );
  assert.equal(toks[0]?.m, 8, 'the template opener knows its closer');
  assert.equal(toks[1]?.m, 7, 'the brace opener knows its closer');
  const lines = tokenize('a\n/* x\n */ b c');
  assert.deepEqual(lines.map((t) => t.nl), [false, true, false], 'a line break inside a comment counts');
});
