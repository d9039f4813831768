// A3S Code's "Cancellation" loop; only the session comes from Sluice (and CANCEL_AFTER_MS may
// shorten the wait). After cancel() the loop still sees the run's last events, up to `end`.
import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = (await sluice.sessions.create()).agent;

const stream = await session.stream('Long running analysis...');
// Cancel after 10 seconds
const timer = setTimeout(() => stream.cancel(), Number(process.env['CANCEL_AFTER_MS'] ?? 10000));
for await (const ev of stream) {
  // Will stop receiving events after cancel
  if (ev.type === 'end') console.log(`\n[end: ${ev.reason}]`);
}
clearTimeout(timer);
