/**
 * A kernel cell ends when its fence is placed, not when its `cell_done` is read (real server,
 * real sandboxes): the kernel writes both without waiting, so a cell whose last events are big
 * (read by the events channel a slice per turn, long after `cell_done` on the control socket)
 * still has every event and every byte of output in its log before `done`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';
import { assertContiguous, doneOf, stream, text } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

test('a kernel cell whose trailing result is big has it (and all its output) before done', async () => {
  // ~1 MiB of text/plain (the helpers' cap), then a second cell to check the acknowledgements add up.
  const code = 'print("before")\n"x" * (3 << 20)';
  for (let i = 0; i < 3; i++) {
    const events = await stream(server.url, 'fence-big', { code, language: 'python', mode: 'kernel' });
    assertContiguous(events);
    const done = doneOf(events);
    assert.equal(done.reason, 'exited');
    assert.equal(done.exit_code, 0);
    const result = events.find((e) => e.type === 'result');
    assert.ok(result, 'no result event');
    const plain = result.data['text/plain'];
    assert.ok(typeof plain === 'string' && plain.length > 512 * 1024, 'the result lost its text');
    assert.equal(text(events, 'stdout'), 'before\n');
    assert.ok(result.seq < done.seq);
  }
  // Progress from the helpers still waits for its own answer, in order with the output.
  const events = await stream(server.url, 'fence-big', { code: 'progress(1)\nprint("a")\nprogress(2)\n2 + 2', language: 'python', mode: 'kernel' });
  assert.deepEqual(
    events.filter((e) => e.type !== 'start' && e.type !== 'done').map((e) => (e.type === 'stdout' ? e.content : e.type === 'progress' ? `p${e.percent}` : e.type)),
    ['p1', 'a\n', 'p2', 'result'],
  );
});
