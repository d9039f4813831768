// A3S Code's "Streaming with Tool Progress" loop, unchanged; only the session comes from Sluice.
import { Sluice } from '@sluice/sdk';

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = (await sluice.sessions.create()).agent;

const stream = await session.stream('Read package.json and list all dependencies');
for await (const ev of stream) {
  if (ev.type === 'tool_start') {
    console.log(`[tool] Starting: ${ev.toolName}`);
  }
  if (ev.type === 'tool_output_delta') {
    // Bash tool streams stdout line by line
    console.log(`[${ev.toolName}] ${ev.text}`);
  }
  if (ev.type === 'tool_end') {
    console.log(`[tool] Done: ${ev.toolName} (exit: ${ev.exitCode})`);
  }
  if (ev.type === 'text_delta') {
    process.stdout.write(ev.text);
  }
}
