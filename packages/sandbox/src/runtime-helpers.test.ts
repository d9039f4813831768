/**
 * The code → Sluice helpers of bash (runtime/bin), R (runtime/r) and Java (runtime/java), run
 * on the host with fd 3 as the events pipe: every line they write must be one valid event,
 * whatever the text holds (quotes, backslashes, control characters, UTF-8, invalid bytes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { appendJavaHelper, runtimeFor } from './runtimes.js';

const RUNTIME = fileURLToPath(new URL('../runtime', import.meta.url));
const PROGRESS = join(RUNTIME, 'bin', 'sluice-progress');
const RESULT = join(RUNTIME, 'bin', 'sluice-result');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The raw bytes written to fd 3. */
  events: Buffer;
}

/**
 * Runs a command with fd 3 as the events channel (SLUICE_EVENTS_FD=3 unless `env` says
 * otherwise): a socket, as Node makes it and as the sandbox gets it, which /dev/fd/3 cannot reopen.
 * Each line marked "sync":true is acknowledged with one 0x06 byte, as the server does.
 */
function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string>; stdin?: Buffer | string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', SLUICE_EVENTS_FD: '3', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const ev: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const events = child.stdio[3];
    if (events instanceof Duplex) {
      let partial = '';
      events.on('data', (c: Buffer) => {
        ev.push(c);
        const split = (partial + c.toString('latin1')).split('\n');
        partial = split.pop() ?? '';
        for (const line of split) if (isSync(line)) events.write(Buffer.from([0x06]));
      });
      // The helper may be gone before its acknowledgement arrives.
      events.on('error', () => {});
    }
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), events: Buffer.concat(ev) }),
    );
    // A helper that does not read its stdin may exit before the write lands (EPIPE): that is the
    // helper's business, and its exit code and output say what happened. Anything else is a failure.
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e);
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

function isSync(line: string): boolean {
  try {
    return (JSON.parse(line) as Record<string, unknown>)['sync'] === true;
  } catch {
    return false;
  }
}

/** Parses fd 3's lines, each of which must be one JSON object marked "sync":true (fd 3 is a socket); returns them without it. */
function lines(events: Buffer): Record<string, unknown>[] {
  const text = events.toString('utf8');
  assert.ok(text === '' || text.endsWith('\n'), `events end with a newline: ${JSON.stringify(text)}`);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const { sync, ...event } = JSON.parse(l) as Record<string, unknown>;
      assert.equal(sync, true, `a line on a socket asks for an acknowledgement: ${l}`);
      return event;
    });
}

test('run() copes with a child that exits without reading its stdin (EPIPE), as a real client must', async () => {
  // 1 MiB cannot fit in the pipe, so the write is still pending when the child is gone.
  const r = await run('/bin/sh', ['-c', 'exit 3'], { stdin: Buffer.alloc(1 << 20, 0x61) });
  assert.equal(r.code, 3);
});

const NASTY = 'q"uote\\back\nnew\ttab\rcr\u0001ctl\u001fus\u007fdel é ✓ 😀 \u2028 end';

test('sluice-progress: percent and message, message only, percent only, --data, clamping', async () => {
  const cases: [string[], Record<string, unknown>][] = [
    [['40', 'Loading data'], { type: 'progress', percent: 40, message: 'Loading data' }],
    [['just', 'a', 'message'], { type: 'progress', message: 'just a message' }],
    [['75%'], { type: 'progress', percent: 75 }],
    [['12.5', 'x'], { type: 'progress', percent: 12.5, message: 'x' }],
    [['150', 'over'], { type: 'progress', percent: 100, message: 'over' }],
    [['--message', '2024'], { type: 'progress', message: '2024' }],
    [['--percent=30', '--data', '{"rows":\n 10}'], { type: 'progress', percent: 30, data: { rows: 10 } }],
    [['--', '--data'], { type: 'progress', message: '--data' }],
  ];
  for (const [args, expected] of cases) {
    const r = await run(PROGRESS, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.deepEqual(lines(r.events), [expected], args.join(' '));
  }
});

test('sluice-progress escapes quotes, backslashes, control characters and keeps UTF-8', async () => {
  const r = await run(PROGRESS, [NASTY]);
  assert.equal(r.code, 0, r.stderr);
  const [ev] = lines(r.events);
  assert.equal(ev?.['message'], NASTY);
  // One line: the newline inside the message is escaped.
  assert.equal(r.events.toString('utf8').split('\n').length, 2);
});

test('invalid UTF-8 becomes U+FFFD, and the line stays valid JSON', async () => {
  const r = await run(RESULT, ['-'], { stdin: Buffer.from([0x61, 0xff, 0xfe, 0x22, 0xe2, 0x82, 0x62, 0xed, 0xa0, 0x80, 0x63]) });
  assert.equal(r.code, 0, r.stderr);
  const [ev] = lines(r.events);
  assert.deepEqual(ev?.['data'], { 'text/plain': 'a\uFFFD\uFFFD"\uFFFD\uFFFDb\uFFFD\uFFFD\uFFFDc' });
});

test('sluice-result: text, stdin, json, html, binary files as base64, several types in one result', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-helpers-'));
  try {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 0xff, 0xfe, 10, 13]);
    await writeFile(join(dir, 'plot.png'), png);
    const text = await run(RESULT, [NASTY]);
    assert.deepEqual(lines(text.events), [{ type: 'result', data: { 'text/plain': NASTY } }]);
    const piped = await run(RESULT, [], { stdin: 'from stdin\n' });
    assert.deepEqual(lines(piped.events), [{ type: 'result', data: { 'text/plain': 'from stdin\n' } }]);
    const multi = await run(RESULT, ['--json', '{"a": [1,\n2]}', '--html', '<b>"x"</b>', '--png', join(dir, 'plot.png')]);
    assert.equal(multi.code, 0, multi.stderr);
    const [ev] = lines(multi.events);
    const data = ev?.['data'] as Record<string, unknown>;
    assert.deepEqual(data['application/json'], { a: [1, 2] });
    assert.equal(data['text/html'], '<b>"x"</b>');
    assert.deepEqual(Buffer.from(String(data['image/png']), 'base64'), png);
    for (const n of [0, 1, 2, 3, 44, 45, 46, 1000]) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
      await writeFile(join(dir, 'b.bin'), bytes);
      const r = await run(RESULT, ['--mime', 'application/octet-stream', 'x', '--jpeg', join(dir, 'b.bin')]);
      const d = lines(r.events)[0]?.['data'] as Record<string, unknown>;
      assert.equal(d['image/jpeg'], bytes.toString('base64'), `${n} bytes`);
    }
    const file = await run(RESULT, ['--file', join(dir, 'plot.png')]);
    assert.deepEqual(Object.keys((lines(file.events)[0]?.['data'] as object) ?? {}), ['image/png']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('outside Sluice the bash helpers print instead (progress on stderr, the text on stdout), and explain misuse', async () => {
  const outside = await run(PROGRESS, ['40', 'Loading', 'data'], { env: { SLUICE_EVENTS_FD: '' } });
  assert.equal(outside.code, 0);
  assert.equal(outside.stderr, '[progress] 40% Loading data\n');
  assert.equal(outside.events.length, 0);
  const notOpen = await run(PROGRESS, ['hi'], { env: { SLUICE_EVENTS_FD: '9' } });
  assert.equal(notOpen.stderr, '[progress] hi\n');
  const text = await run(RESULT, ['--json', '{"a": 1}'], { env: { SLUICE_EVENTS_FD: '' } });
  assert.equal(text.stdout, '{"a": 1}\n');
  const html = await run(RESULT, ['--html', '<b>'], { env: { SLUICE_EVENTS_FD: '' } });
  assert.equal(html.stdout, '[result: text/html]\n');
  const usage = await run(PROGRESS, []);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: sluice-progress/);
  const unknownType = await run(RESULT, ['--file', 'x.unknown']);
  assert.equal(unknownType.code, 1);
  assert.match(unknownType.stderr, /cannot tell the MIME type/);
});

test('R helpers: progress, result of vectors, lists and data frames, escaping', async (t) => {
  if (!existsSync('/usr/bin/Rscript')) return t.skip('Rscript is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'sluice-r-'));
  try {
    const script = join(dir, 'main.R');
    await writeFile(
      script,
      [
        'cat("a\\n")',
        'progress(40, "Loading")',
        `sluice_progress(${JSON.stringify(NASTY.replace('\u2028', ''))}, data = list(n = 1L, v = c(1.5, NA, Inf), ok = TRUE, s = NULL))`,
        'result(1:3)',
        'result(data.frame(a = 1:2, b = c("x", "y")))',
        'result("<b>hi</b>", mime = "text/html")',
        'result(as.raw(c(1, 2, 255)), mime = "image/png")',
        'result(NULL)',
        'cat(length(ls()), "\\n")',
      ].join('\n'),
    );
    const r = await run('/usr/bin/Rscript', [script], { env: { R_PROFILE_USER: join(RUNTIME, 'r', 'sluice.R') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'a\n0 \n', 'the helpers do not show up in ls()');
    assert.deepEqual(lines(r.events), [
      { type: 'progress', percent: 40, message: 'Loading' },
      { type: 'progress', message: NASTY.replace('\u2028', ''), data: { n: 1, v: [1.5, null, null], ok: true, s: null } },
      { type: 'result', data: { 'text/plain': '[1] 1 2 3', 'application/json': [1, 2, 3] } },
      { type: 'result', data: { 'text/plain': '  a b\n1 1 x\n2 2 y', 'application/json': [{ a: 1, b: 'x' }, { a: 2, b: 'y' }] } },
      { type: 'result', data: { 'text/html': '<b>hi</b>' } },
      { type: 'result', data: { 'image/png': Buffer.from([1, 2, 255]).toString('base64') } },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Java helper: appended after the last line (line numbers kept), progress and results as JSON', async (t) => {
  if (!existsSync('/usr/bin/javac')) return t.skip('no JDK');
  const user = [
    'import java.util.*;',
    'public class Main {',
    '  public static void main(String[] args) {',
    '    System.out.print("a");',
    '    Sluice.progress(40, "Loading");',
    `    Sluice.progress(${JSON.stringify(NASTY).replace('\u2028', '\\u2028')});`,
    '    Sluice.progress(50.5, null, Map.of("v", List.of(1.5, Double.NaN)));',
    '    Sluice.result(List.of(1, 2));',
    '    Sluice.result("image/png", new byte[] {1, 2, (byte) 255});',
    '    throw new IllegalStateException("line 10");',
    '  }',
    '}',
  ].join('\n');
  const code = appendJavaHelper(user);
  assert.ok(code.startsWith(`${user}\n`));
  assert.equal(appendJavaHelper('class Sluice {}'), 'class Sluice {}', 'a program with its own Sluice class is left alone');
  const dir = await mkdtemp(join(tmpdir(), 'sluice-java-'));
  try {
    await writeFile(join(dir, 'Main.java'), code);
    const r = await run('/usr/bin/java', [...(runtimeFor('java')?.args(join(dir, 'Main.java')) ?? [])]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'a');
    assert.match(r.stderr, /IllegalStateException: line 10\n\s+at Main\.main\(Main\.java:10\)/);
    assert.deepEqual(lines(r.events), [
      { type: 'progress', percent: 40, message: 'Loading' },
      { type: 'progress', message: NASTY },
      { type: 'progress', percent: 50.5, data: { v: [1.5, null] } },
      { type: 'result', data: { 'text/plain': '[1, 2]', 'application/json': [1, 2] } },
      { type: 'result', data: { 'image/png': Buffer.from([1, 2, 255]).toString('base64') } },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
