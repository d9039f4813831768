import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = await sluice.sessions.create();
const forever = 'import time\ni = 0\nwhile True:\n    print(f"tick {i}", flush=True)\n    i += 1\n    time.sleep(0.1)';

// 1. Leaving the loop cancels the run on the server: its whole process tree is stopped.
const stream = session.stream(forever, { mode: 'process' });
for await (const event of stream) {
  if (event.type === 'stdout' && event.content.includes('tick 2')) break;
}
// The log stays readable: follow it to its `done` to see how it ended.
const ended = await sluice.executions.events(await stream.executionID).result();
process.stdout.write(`after break: ${ended.reason}\n`); // cancelled

// 2. An AbortSignal does the same, here a deadline on the client's side.
try {
  await session.run(forever, { mode: 'process', signal: AbortSignal.timeout(500) });
} catch (err) {
  if (!(err instanceof DOMException && err.name === 'TimeoutError')) throw err;
  process.stdout.write('aborted after 500 ms\n');
}

// 3. stream.cancel() asks the server to stop it and keeps reading up to the `done`.
const watched = session.stream(forever, { mode: 'process', onStdout: () => void watched.cancel() });
const result = await watched.result();
process.stdout.write(`cancelled: ${result.cancelled}, signal ${result.signal ?? 'none'}\n`);
await session.delete();
