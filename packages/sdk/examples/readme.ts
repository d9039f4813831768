import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = await sluice.sessions.create({ language: 'python' });

await session.run('import statistics\ndata = [3, 1, 4, 1, 5, 9, 2, 6]');
const { results } = await session.run('statistics.median(data)');
console.log(results[0]?.['text/plain']); // 3.5

for await (const ev of session.stream('for i in range(3):\n    progress(i * 50, "working")\n    print(i)')) {
  if (ev.type === 'stdout') process.stdout.write(ev.content);
  if (ev.type === 'progress') console.error(`${ev.percent ?? 0}% ${ev.message ?? ''}`);
}
await session.delete();
