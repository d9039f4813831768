import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = await sluice.sessions.create();

// Without `stdin` in the options, the program's stdin stays open for the stream to write to.
const stream = session.stream('name = input("name? ")\nprint(f"hello, {name}")', { mode: 'process' });
await stream.stdin('Ada\n');
await stream.closeStdin();
const result = await stream.result(); // drains the stream and folds it
process.stdout.write(result.stdout); // "name? hello, Ada\n"
await session.delete();
