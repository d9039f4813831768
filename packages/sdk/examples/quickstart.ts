import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({
  baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080',
  apiKey: process.env['SLUICE_API_KEY'],
});

const session = await sluice.sessions.create({ language: 'python' });
try {
  const result = await session.run('import sys\nprint(6 * 7)\nprint("warming up", file=sys.stderr)', { mode: 'process' });
  process.stdout.write(result.stdout); // "42\n"
  process.stdout.write(`exit ${result.exitCode} (${result.reason}) in ${result.durationMs} ms\n`);
} finally {
  await session.delete();
}
