// A3S Code's "Basic Streaming" loop, unchanged; only the session comes from Sluice.
import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = (await sluice.sessions.create()).agent;

const stream = await session.stream('Explain how async/await works in Rust');
for await (const ev of stream) {
  if (ev.type === 'text_delta') {
    process.stdout.write(ev.text);
  }
}
