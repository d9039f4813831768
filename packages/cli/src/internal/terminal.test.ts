import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Terminal } from './terminal.js';

/** A stream that records what is written, as a terminal (isTTY) or as a pipe. */
class Recorder extends Writable {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 60,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const ERASE = '\r\x1b[K';
const bar = (n: number): string => `[${'#'.repeat(Math.round((n / 100) * 30)).padEnd(30, '-')}]`;

test('on a terminal the bar is drawn in place, erased before output and drawn again after a full line', async () => {
  const screen = new Recorder(true);
  const term = new Terminal(screen, screen, { progressBar: true });
  term.progress({ percent: 10, message: 'a' });
  term.progress({ percent: 20, message: 'b' });
  await term.stdout('line\n');
  term.clearProgress();
  assert.equal(
    screen.text,
    `${ERASE}${bar(10)}  10% a\x1b[K` + `${ERASE}${bar(20)}  20% b\x1b[K` + `${ERASE}line\n` + `${ERASE}${bar(20)}  20% b\x1b[K` + ERASE,
  );
});

test('the bar waits while the program\'s line is unfinished, so it never overwrites it', async () => {
  const screen = new Recorder(true);
  const term = new Terminal(screen, screen, { progressBar: true });
  await term.stdout('name? ');
  term.progress({ percent: 50 });
  assert.equal(screen.text, 'name? ');
  await term.stdout('Ada\n');
  assert.equal(screen.text, `name? Ada\n${ERASE}${bar(50)}  50%\x1b[K`);
});

test('no bar when stderr is not a terminal, or with --no-progress', async () => {
  const out = new Recorder(true);
  const pipe = new Recorder(false);
  const t1 = new Terminal(out, pipe, { progressBar: true });
  t1.progress({ percent: 50, message: 'x' });
  await t1.stdout('a\n');
  assert.equal(pipe.text, '');
  assert.equal(out.text, 'a\n');
  const screen = new Recorder(true);
  const t2 = new Terminal(screen, screen, { progressBar: false });
  t2.progress({ percent: 50 });
  assert.equal(screen.text, '');
});

test('output to a pipe does not touch the bar on the terminal', async () => {
  const pipe = new Recorder(false);
  const screen = new Recorder(true);
  const term = new Terminal(pipe, screen, { progressBar: true });
  term.progress({ percent: 50 });
  await term.stdout('data without newline');
  assert.equal(pipe.text, 'data without newline');
  assert.equal(screen.text, `${ERASE}${bar(50)}  50%\x1b[K`);
});

test('a note starts on a line of its own after unfinished output, and is prefixed sluice:', async () => {
  const out = new Recorder(false);
  const err = new Recorder(false);
  const term = new Terminal(out, err, { progressBar: false });
  await term.stderr('partial');
  await term.note('timed out after 1.000s');
  await term.note('again');
  assert.equal(err.text, 'partial\nsluice: timed out after 1.000s\nsluice: again\n');
});

test('a write error is reported once, as a broken pipe for EPIPE; later writes are dropped', async () => {
  const out = new Recorder(false);
  const err = new Recorder(false);
  const seen: string[] = [];
  const term = new Terminal(out, err, { progressBar: false }, (why) => seen.push(why));
  out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  await term.stdout('lost\n');
  assert.deepEqual(seen, ['broken_pipe']);
  assert.equal(term.failure, 'broken_pipe');
  assert.equal(out.text, '');
  term.dispose();
});
