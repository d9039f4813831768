import { Sluice } from '@sluice/sdk';

// Dropped connections resume by themselves (these are the defaults, spelt out).
const sluice = new Sluice({
  baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080',
  apiKey: process.env['SLUICE_API_KEY'],
  reconnect: { maxAttempts: 8, initialDelayMs: 250, maxDelayMs: 5000 },
});
const session = await sluice.sessions.create();
const code = 'import time\nfor i in range(8):\n    print(f"step {i}", flush=True)\n    time.sleep(0.1)';

// A reader that goes away on purpose (a page reload, a worker restart) keeps two numbers: the
// execution id and the last seq it handled. `cancelOnLeave: false` lets the run go on without it.
const stream = session.stream(code, { mode: 'process', cancelOnLeave: false });
const executionID = await stream.executionID;
let lastSeq = 0;
for await (const event of stream) {
  lastSeq = event.seq;
  if (event.type === 'stdout') process.stdout.write(event.content);
  if (event.type === 'stdout' && event.content.includes('step 2')) break;
}

// Later, from anywhere: continue after that seq; every event arrives once, none is missed.
for await (const event of session.attach(executionID, { from: lastSeq + 1 })) {
  if (event.type === 'stdout') process.stdout.write(event.content);
  if (event.type === 'done') process.stdout.write(`done: ${event.reason}\n`);
}
await session.delete();
