import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionEvent } from '@sluice/protocol';
import { ConnectionError, SluiceError } from './errors.js';
import { ExecutionStream } from './execution-stream.js';
import type { ExecutionEventSource } from './internal/event-source.js';

/** A scripted source: yields `events`, then waits forever (unless `end`), recording commands. */
class ScriptedSource implements ExecutionEventSource {
  readonly executionID = Promise.resolve('E');
  log: string[] = [];
  private i = 0;
  private release: (() => void) | undefined;
  constructor(
    private readonly events: ExecutionEvent[],
    private readonly end: 'hang' | 'null' | Error = 'hang',
  ) {}
  async next(): Promise<ExecutionEvent | null> {
    const e = this.events[this.i++];
    if (e) return e;
    if (this.end === 'null') return null;
    if (this.end instanceof Error) throw this.end;
    await new Promise<void>((r) => (this.release = r));
    return null;
  }
  async cancel(): Promise<void> {
    this.log.push('cancel');
  }
  async stdin(data: string, eof: boolean): Promise<void> {
    this.log.push(`stdin:${data}:${eof}`);
  }
  close(): void {
    this.log.push('close');
    this.release?.();
  }
}

const start: ExecutionEvent = { type: 'start', seq: 1, ts: 1, execution_id: 'E', session_id: 's', language: 'python', mode: 'process' };
const out = (seq: number, content: string): ExecutionEvent => ({ type: 'stdout', seq, ts: 1, content });
const err = (seq: number, content: string): ExecutionEvent => ({ type: 'stderr', seq, ts: 1, content });
const done = (seq: number, reason: 'exited' | 'timeout' = 'exited'): ExecutionEvent => ({
  type: 'done',
  seq,
  ts: 1,
  exit_code: reason === 'exited' ? 3 : 143,
  duration: '0.010s',
  duration_ms: 10,
  reason,
});

test('iterates every event, fires the callbacks in order, and folds the result', async () => {
  const calls: string[] = [];
  const events = [start, out(2, 'a'), err(3, 'b'), { type: 'progress', seq: 4, ts: 1, percent: 50 } as const, { type: 'error', seq: 5, ts: 1, error: 'boom', code: 'SANDBOX_UNAVAILABLE' } as const, done(6)];
  const s = new ExecutionStream(new ScriptedSource(events, 'null'), {
    onEvent: (e) => calls.push(`event:${e.type}`),
    onStdout: (t) => calls.push(`stdout:${t}`),
    onStderr: (t) => calls.push(`stderr:${t}`),
    onProgress: (e) => calls.push(`progress:${e.percent}`),
    onError: (e) => calls.push(`error:${e.code}`),
  });
  const seen: ExecutionEvent[] = [];
  for await (const e of s) seen.push(e);
  assert.deepEqual(seen, events);
  assert.deepEqual(calls, [
    'event:start',
    'event:stdout',
    'stdout:a',
    'event:stderr',
    'stderr:b',
    'event:progress',
    'progress:50',
    'event:error',
    'error:SANDBOX_UNAVAILABLE',
    'event:done',
  ]);
  const r = await s.result();
  assert.equal(r.executionID, 'E');
  assert.equal(r.stdout, 'a');
  assert.equal(r.stderr, 'b');
  assert.equal(r.exitCode, 3);
  assert.equal(r.ok, false);
  assert.deepEqual(r.error, { code: 'SANDBOX_UNAVAILABLE', message: 'boom' });
});

test('break cancels the execution on the server, then closes the connection', async () => {
  const src = new ScriptedSource([start, out(2, 'a')]);
  const s = new ExecutionStream(src);
  for await (const e of s) if (e.type === 'stdout') break;
  assert.deepEqual(src.log, ['cancel', 'close']);
  await assert.rejects(s.result(), (e: unknown) => e instanceof Error && e.name === 'AbortError');
});

test('an attached reader that leaves only closes (cancelOnLeave: false)', async () => {
  const src = new ScriptedSource([start]);
  for await (const _ of new ExecutionStream(src, { cancelOnLeave: false })) break;
  assert.deepEqual(src.log, ['close']);
});

test('aborting the signal rejects the pending read with its reason and cancels on the server', async () => {
  const src = new ScriptedSource([start]);
  const ac = new AbortController();
  const s = new ExecutionStream(src, { signal: ac.signal });
  const it = s[Symbol.asyncIterator]();
  assert.equal((await it.next()).done, false);
  const pending = it.next();
  await sleep(5);
  ac.abort(new Error('enough'));
  await assert.rejects(pending, /enough/);
  await sleep(5);
  assert.deepEqual(src.log, ['cancel', 'close']);
  assert.equal((await it.next()).done, true);
});

test('a stream that ends without done rejects its result with a ConnectionError', async () => {
  const errors: SluiceError[] = [];
  const s = new ExecutionStream(new ScriptedSource([start], 'null'), { onError: (e) => errors.push(e) });
  await assert.rejects(s.result(), ConnectionError);
  assert.equal(errors.length, 1);
});

test('a failing source rejects the iteration and reports to onError', async () => {
  const errors: SluiceError[] = [];
  const failure = new ConnectionError('gone');
  const s = new ExecutionStream(new ScriptedSource([start], failure), { onError: (e) => errors.push(e) });
  await assert.rejects(async () => {
    for await (const _ of s) {
      // keep reading
    }
  }, ConnectionError);
  assert.deepEqual(errors, [failure]);
});

test('a throwing callback stops the stream and cancels the execution', async () => {
  const src = new ScriptedSource([start, out(2, 'x')]);
  const s = new ExecutionStream(src, {
    onStdout: () => {
      throw new Error('callback failed');
    },
  });
  await assert.rejects(s.result(), /callback failed/);
  assert.deepEqual(src.log, ['cancel', 'close']);
});

test('a timeout is a result, not an exception', async () => {
  const r = await new ExecutionStream(new ScriptedSource([start, done(2, 'timeout')])).result();
  assert.equal(r.reason, 'timeout');
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, 143);
});

test('a stream has a single reader', () => {
  const s = new ExecutionStream(new ScriptedSource([start]));
  s[Symbol.asyncIterator]();
  assert.throws(() => s[Symbol.asyncIterator](), /single reader/);
  void s.result().catch(() => {});
});

test('stdin and closeStdin go to the source', async () => {
  const src = new ScriptedSource([start, done(2)]);
  const s = new ExecutionStream(src);
  await s.stdin('hi');
  await s.closeStdin();
  await s.result();
  assert.deepEqual(src.log.slice(0, 2), ['stdin:hi:false', 'stdin::true']);
});
