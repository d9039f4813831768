import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = sluice.session('streaming-demo'); // a run on a new id creates the session

const code = `
import time
for i in range(5):
    print(f"tick {i}", flush=True)
    time.sleep(0.2)
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
    case 'done':
      process.stdout.write(`done: ${event.reason}, exit ${event.exit_code}\n`);
      break;
    default:
      break; // start, progress, result, truncated, gap, error
  }
}

// Or callbacks, with the folded result at the end.
const result = await session.run('print("hello")', {
  mode: 'process',
  onStdout: (text) => process.stdout.write(text),
  onStderr: (text) => process.stderr.write(text),
});
process.stdout.write(`exit code ${result.exitCode}\n`);
await session.delete();
