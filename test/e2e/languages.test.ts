/**
 * Every language of the contract in process mode, end to end (real server, real sandboxes):
 * it prints, it streams (lines separated by a sleep arrive apart), a failure is a non-zero
 * exit with the error on stderr at the user's own line number, and its code → Sluice helper
 * puts `progress` and `result` events in the log between the stdout lines around them.
 * Plus `GET /api/languages` and the refusal of a language this server cannot run.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_STATUS, LANGUAGES, type Language } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON, runStream, type RunOutcome, type Timed } from './helpers/client.js';

let server: TestServer;
/** `GET /api/languages`, by language. */
const languages = new Map<string, Record<string, unknown>>();

before(async () => {
  server = await startServer({ SLUICE_WARM_RUNTIMES: 'true' });
  const res = await fetch(`${server.url}/api/languages`);
  const body = (await res.json()) as { languages: Record<string, unknown>[] };
  for (const l of body.languages) languages.set(String(l['language']), l);
});
after(async () => {
  await server.stop();
});

/** One language's programs. */
interface Case {
  language: Language;
  /** Prints `héllo ✓` and a newline. */
  hello: string;
  /**
   * Prints `one`, progress 25 "Loading", sleeps 0.8 s, prints `two`, progress 75 "Almost",
   * a result whose JSON is {"answer": 42} (where the helper sends JSON), sleeps 0.3 s, prints
   * `three`. (An event is guaranteed to follow the output printed before it; output printed
   * right after it may be read first, as stdout and the events fd are separate pipes.)
   */
  channel: string;
  /** Prints `before`, then fails on line 3 with the message `boom`. */
  fail: string;
  /** What stderr must say about the failure (the line number included where the runtime gives one). */
  failure: RegExp;
  failExit: number;
}

const CASES: Case[] = [
  {
    language: 'python',
    hello: 'print("héllo ✓")',
    channel: [
      'import time',
      'from sluice import progress, result',
      'print("one")',
      'progress(25, "Loading")',
      'time.sleep(0.8)',
      'print("two")',
      'progress(75, "Almost")',
      'result({"answer": 42})',
      'time.sleep(0.3)',
      'print("three")',
    ].join('\n'),
    fail: 'print("before")\nx = 1\nraise ValueError("boom")\n',
    failure: /line 3[\s\S]*ValueError: boom/,
    failExit: 1,
  },
  {
    language: 'javascript',
    hello: 'console.log("héllo ✓")',
    channel: [
      "const { progress, result } = require('sluice');",
      "console.log('one');",
      "progress(25, 'Loading');",
      'setTimeout(() => {',
      "  console.log('two');",
      "  progress(75, 'Almost');",
      '  result({ answer: 42 });',
      "  setTimeout(() => console.log('three'), 300);",
      '}, 800);',
    ].join('\n'),
    fail: 'console.log("before");\nconst x = 1;\nthrow new Error("boom" + "");\n',
    failure: /main\.js:3[\s\S]*Error: boom/,
    failExit: 1,
  },
  {
    language: 'typescript',
    hello: 'const s: string = "héllo ✓";\nconsole.log(s);',
    channel: [
      "import { progress, result } from 'sluice';",
      'const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));',
      'async function main(): Promise<void> {',
      "  console.log('one');",
      "  progress(25, 'Loading');",
      '  await sleep(800);',
      "  console.log('two');",
      "  progress(75, 'Almost');",
      '  result({ answer: 42 });',
      '  await sleep(300);',
      "  console.log('three');",
      '}',
      'void main();',
    ].join('\n'),
    // Line 1 is erased by the compiler: the source map must still name line 3.
    fail: 'interface Point { x: number }\nconst p: Point = { x: 1 }; console.log("before");\nthrow new Error("boom" + p.x);\n',
    failure: /main\.ts:3[\s\S]*Error: boom1/,
    failExit: 1,
  },
  {
    language: 'bash',
    hello: 'echo "héllo ✓"',
    channel: [
      'echo one',
      'sluice-progress 25 Loading',
      'sleep 0.8',
      'echo two',
      'sluice-progress 75 Almost',
      'sluice-result --json \'{"answer": 42}\'',
      'sleep 0.3',
      'echo three',
    ].join('\n'),
    fail: 'echo before\necho "boom: no such thing" >&2\nexit 3\n',
    failure: /^boom: no such thing\n$/,
    failExit: 3,
  },
  {
    language: 'r',
    hello: 'cat("héllo ✓\\n")',
    channel: [
      'cat("one\\n")',
      'progress(25, "Loading")',
      'Sys.sleep(0.8)',
      'print("two", quote = FALSE)',
      'sluice_progress(75, "Almost")',
      'result(list(answer = 42))',
      'Sys.sleep(0.3)',
      'cat("three\\n")',
    ].join('\n'),
    fail: 'cat("before\\n")\nx <- 1\nstop("boom")\n',
    failure: /Error: boom/,
    failExit: 1,
  },
  {
    language: 'java',
    hello: 'public class Main {\n  public static void main(String[] args) {\n    System.out.println("héllo ✓");\n  }\n}\n',
    channel: [
      'import java.util.*;',
      'public class Main {',
      '  public static void main(String[] args) throws Exception {',
      '    System.out.println("one");',
      '    Sluice.progress(25, "Loading");',
      '    Thread.sleep(800);',
      '    System.out.println("two");',
      '    Sluice.progress(75, "Almost");',
      '    Sluice.result(Map.of("answer", 42));',
      '    Thread.sleep(300);',
      '    System.out.println("three");',
      '  }',
      '}',
    ].join('\n'),
    fail: 'public class Main {\n  public static void main(String[] args) {\n    System.out.println("before"); throw new IllegalStateException("boom");\n  }\n}\n',
    failure: /IllegalStateException: boom\s+at Main\.main\(Main\.java:3\)/,
    failExit: 1,
  },
];

/** Skips the test when this host lacks the language (as `GET /api/languages` says). */
function installed(t: TestContext, language: Language): boolean {
  const info = languages.get(language);
  if (info?.['installed'] === true) return true;
  t.skip(`${language} is not installed here: ${String(info?.['reason'])}`);
  return false;
}

function run(session: string, language: Language, code: string): Promise<RunOutcome> {
  return runStream(server.url, session, { language, code, mode: 'process', timeout: 60 });
}

/** stdout lines, progress and results in log order: `out:one`, `progress:25:Loading`, `result`. */
function channelOrder(events: readonly Timed[]): string[] {
  const out: string[] = [];
  let pending = '';
  for (const e of events) {
    if (e.type === 'stdout') {
      pending += e.content;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        out.push(`out:${pending.slice(0, nl).replace(/^\[1\] /, '')}`);
        pending = pending.slice(nl + 1);
      }
    } else if (e.type === 'progress') {
      out.push(`progress:${e.percent ?? ''}:${e.message ?? ''}`);
    } else if (e.type === 'result') {
      out.push('result');
    }
  }
  return out;
}

/** When the stdout line holding `text` completed. */
function lineArrival(events: readonly Timed[], text: string): number {
  let seen = '';
  for (const e of events) {
    if (e.type !== 'stdout') continue;
    seen += e.content;
    if (seen.includes(`${text}\n`)) return e.arrivedAt;
  }
  throw new Error(`no stdout line ${text}`);
}

for (const c of CASES) {
  test(`${c.language}: prints UTF-8 and exits 0, in process mode`, async (t) => {
    if (!installed(t, c.language)) return;
    const r = await run(`${c.language}-hello`, c.language, c.hello);
    const start = r.events[0];
    assert.equal(start?.type, 'start');
    if (start?.type === 'start') {
      assert.equal(start.language, c.language);
      assert.equal(start.mode, 'process');
    }
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'héllo ✓\n');
    assert.equal(r.done.exit_code, 0);
    assert.equal(r.done.reason, 'exited');
    t.diagnostic(`${c.language}: a trivial run took ${r.done.duration_ms} ms`);
  });

  test(`${c.language}: output streams while it runs, and the helper's progress and result land between the lines around them`, async (t) => {
    if (!installed(t, c.language)) return;
    const r = await run(`${c.language}-channel`, c.language, c.channel);
    assert.equal(r.done.exit_code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(channelOrder(r.events), ['out:one', 'progress:25:Loading', 'out:two', 'progress:75:Almost', 'result', 'out:three']);
    // Separate events at separate times: `one` arrives during the sleep, long before `two`.
    const gap = lineArrival(r.events, 'two') - lineArrival(r.events, 'one');
    assert.ok(gap > 400, `"two" arrived ${gap.toFixed(0)} ms after "one" (the program slept 800 ms between them)`);
    const result = r.events.find((e) => e.type === 'result');
    assert.ok(result?.type === 'result' && typeof result.data['text/plain'] === 'string', `a text/plain result: ${JSON.stringify(result)}`);
    if (result?.type === 'result' && c.language !== 'python' && c.language !== 'javascript') {
      assert.deepEqual(result.data['application/json'], { answer: 42 });
    }
  });

  test(`${c.language}: an error exits non-zero with the message on stderr`, async (t) => {
    if (!installed(t, c.language)) return;
    const r = await run(`${c.language}-fail`, c.language, c.fail);
    assert.equal(r.stdout, 'before\n');
    assert.match(r.stderr, c.failure);
    assert.equal(r.done.exit_code, c.failExit);
    assert.equal(r.done.reason, 'exited');
  });
}

test('typescript: a syntax error is a diagnostic with line:col and exit 1; top-level await works', async (t) => {
  if (!installed(t, 'typescript')) return;
  const bad = await run('ts-syntax', 'typescript', 'const a: number = 1;\nconst b = (a 2);\n');
  assert.equal(bad.done.exit_code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /main\.ts:2:14 - error TS1005: '\)' expected\.\n\n2 \| const b = \(a 2\);\n {2}\| {14}\^/);
  const tla = await run('ts-tla', 'typescript', 'const x: number = await Promise.resolve(41);\nconsole.log(x + 1);\n');
  assert.equal(tla.stderr, '');
  assert.equal(tla.stdout, '42\n');
  // Types are erased, not checked: a type error still runs.
  const loose = await run('ts-types', 'typescript', 'const n: number = "not a number" as unknown as number;\nconsole.log(typeof n);\n');
  assert.equal(loose.stdout, 'string\n');
});

test('java: a compile error names the user\'s line; a file with a package line runs too', async (t) => {
  if (!installed(t, 'java')) return;
  const bad = await run('java-compile', 'java', 'public class Main {\n  public static void main(String[] args) {\n    int x = "text";\n  }\n}\n');
  assert.equal(bad.done.exit_code, 1);
  assert.match(bad.stderr, /Main\.java:3: error: incompatible types/);
  const pkg = await run(
    'java-package',
    'java',
    'package demo.app;\npublic class Main {\n  public static void main(String[] args) {\n    System.out.println(Main.class.getName());\n    Sluice.progress(50, "half");\n  }\n}\n',
  );
  assert.equal(pkg.stderr, '');
  assert.equal(pkg.stdout, 'demo.app.Main\n');
  assert.deepEqual(channelOrder(pkg.events), ['out:demo.app.Main', 'progress:50:half']);
});

test('GET /api/languages lists every language with installed, version, reason, default_mode and modes', async () => {
  const res = await fetch(`${server.url}/api/languages`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { languages: Record<string, unknown>[] };
  assert.deepEqual(
    body.languages.map((l) => l['language']),
    [...LANGUAGES],
  );
  for (const l of body.languages) {
    assert.deepEqual(Object.keys(l).sort(), ['default_mode', 'installed', 'language', 'modes', 'reason', 'version'], JSON.stringify(l));
    const kernel = l['language'] === 'python' || l['language'] === 'javascript';
    assert.deepEqual(l['modes'], kernel ? ['kernel', 'process'] : ['process']);
    assert.equal(l['default_mode'], kernel ? 'kernel' : 'process');
    if (l['installed'] === true) {
      assert.equal(l['reason'], null);
      assert.equal(typeof l['version'], 'string', JSON.stringify(l));
    } else {
      assert.equal(l['version'], null);
      assert.match(String(l['reason']), /install/, JSON.stringify(l));
    }
  }
  const version = (lang: string): string => String(languages.get(lang)?.['version']);
  const patterns: Record<Language, RegExp> = {
    python: /^Python 3\.\d+\.\d+/,
    javascript: /^v\d+\.\d+\.\d+$/,
    typescript: /^TypeScript \d+\.\d+\.\d+ on Node v\d+\.\d+\.\d+$/,
    bash: /^GNU bash \d+\.\d+/,
    r: /^R \d+\.\d+\.\d+$/,
    java: /^openjdk \d+(\.\d+)*$/,
  };
  for (const lang of LANGUAGES) {
    if (languages.get(lang)?.['installed'] === true) assert.match(version(lang), patterns[lang]);
  }
});

test('a language this server cannot run answers 422 UNSUPPORTED_LANGUAGE, naming what it can run', async () => {
  const res = await postJSON(`${server.url}/api/sessions/no-such-language/run`, { language: 'cobol', code: 'DISPLAY "HI".' });
  assert.equal(res.status, ERROR_STATUS.UNSUPPORTED_LANGUAGE);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'UNSUPPORTED_LANGUAGE');
  assert.match(body.error.message, /language: expected one of python, javascript/);
  assert.match(body.error.message, /got "cobol"/);
  // A language of the contract that this host lacks says why and what to install.
  for (const [lang, info] of languages) {
    if (info['installed'] === true) continue;
    const r = await postJSON(`${server.url}/api/sessions/missing-${lang}/run`, { language: lang, code: '' });
    assert.equal(r.status, 422);
    const b = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(b.error.code, 'UNSUPPORTED_LANGUAGE');
    assert.ok(b.error.message.includes(String(info['reason'])), b.error.message);
  }
});
