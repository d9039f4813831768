import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = await sluice.sessions.create({ language: 'python' });

// Python and JavaScript run in the session's kernel by default: state persists between runs,
// and a trailing expression becomes a `result` (MIME type → data).
await session.run('import math\nradius = 2', { mode: 'kernel' });
const area = await session.run('math.pi * radius ** 2', { mode: 'kernel' });
process.stdout.write(`area: ${String(area.results[0]?.['text/plain'])}\n`); // 12.566370614359172

// A restart stops the session's kernels: variables and imports are gone, files stay.
process.stdout.write(`restarted: ${(await session.restart()).join(', ')}\n`); // python
const after = await session.run('radius', { mode: 'kernel' });
process.stdout.write(after.stderr.includes('NameError') ? 'radius is gone\n' : 'radius survived\n');
await session.delete();
