import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = await sluice.sessions.create();

await session.files.write('data/input.csv', 'x,y\n1,2\n3,4\n');
const result = await session.run(
  'import csv\nrows = list(csv.DictReader(open("data/input.csv")))\nopen("data/sum.bin", "wb").write(bytes([sum(int(r["y"]) for r in rows), 0, 255]))',
  { mode: 'process' },
);
if (!result.ok) throw new Error(`the script failed: ${result.stderr}`);

const bytes = await session.files.read('data/sum.bin'); // Uint8Array, byte for byte
process.stdout.write(`sum.bin: ${[...bytes].join(' ')}\n`); // 6 0 255
for (const entry of await session.files.list('data')) process.stdout.write(`${entry.type} ${entry.path} ${entry.size}\n`);
await session.files.delete('data');
await session.delete();
