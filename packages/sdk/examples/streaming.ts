import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = sluice.session('streaming-demo'); // a run on a new id creates the session

const code = `
import time
from sluice import progress, result
for i in range(5):
    print(f"tick {i}")
    progress(25 * i, f"tick {i}")
    time.sleep(0.2)
result({"ticks": 5})
`;

// Iterate the typed events; `break` (or an aborted signal) cancels the run on the server.
const stream = session.stream(code, { mode: 'process', signal: AbortSignal.timeout(30_000) });
process.stdout.write(`execution ${await stream.executionID}\n`);
for await (const event of stream) {
  switch (event.type) {
    case 'stdout':
      process.stdout.write(event.content);
      break;
    case 'stderr':
      process.stderr.write(event.content);
      break;
    case 'progress':
      process.stdout.write(`[${event.percent ?? '?'}%] ${event.message ?? ''}\n`);
      break;
    case 'result':
      process.stdout.write(`result: ${JSON.stringify(event.data['application/json'])}\n`);
      break;
    case 'done':
      process.stdout.write(`done: ${event.reason}, exit ${event.exit_code}\n`);
      break;
    case 'start':
    case 'truncated':
    case 'gap':
    case 'error':
      break;
    default:
      event satisfies never; // the union is closed: a new event type fails to compile here
  }
}

// Or callbacks, with the folded result at the end.
const result = await session.run('import sys\nprint("hello")\nprint("careful", file=sys.stderr)', {
  mode: 'process',
  onStdout: (text) => process.stdout.write(text),
  onStderr: (text) => process.stderr.write(text),
  onProgress: (p) => process.stdout.write(`${p.percent ?? 0}%\n`),
  onResult: (r) => process.stdout.write(`${String(r.data['text/plain'])}\n`),
  onError: (err) => process.stderr.write(`${err.code}: ${err.message}\n`),
});
process.stdout.write(`exit code ${result.exitCode}\n`);
await session.delete();
