import { NotFoundError, SessionBusyError, Sluice, SluiceError, isTimeout } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });

// Requests that fail throw typed errors.
try {
  await sluice.sessions.get('no-such-session');
} catch (err) {
  if (err instanceof NotFoundError) process.stdout.write(`not found (${err.status}): ${err.message}\n`);
  else if (err instanceof SessionBusyError) process.stdout.write(`busy, retry in ${err.retryAfter ?? 1} s\n`);
  else if (err instanceof SluiceError) process.stdout.write(`${err.code}: ${err.message}\n`);
  else throw err;
}

// How a program ended is a result, not an exception: a timeout included.
const session = await sluice.sessions.create();
const result = await session.run('import time\ntime.sleep(10)', { mode: 'process', timeout: 1 });
if (isTimeout(result)) process.stdout.write(`timed out after ${result.durationMs} ms (exit ${result.exitCode}, ${result.signal})\n`);
await session.delete();
