// A3S Code's "Building a Chat UI" loop, unchanged but for the parameter's type; the UI prints.
import { Sluice, type SessionAgent } from '@sluice/sdk';

const appendToChat = (text: string): void => void process.stdout.write(text);
const showToolIndicator = (name: string): void => void process.stdout.write(`\n[${name} running]\n`);
const hideToolIndicator = (name: string): void => void process.stdout.write(`[${name} done]\n`);
const showToolError = (name: string, output: string): void => void process.stdout.write(`[${name} failed] ${output}\n`);
const markComplete = (tokens: number): void => void process.stdout.write(`\n[complete: ${tokens} tokens]\n`);

async function handleUserMessage(session: SessionAgent, message: string) {
  const stream = await session.stream(message);
  const events = [];
  for await (const ev of stream) {
    switch (ev.type) {
      case 'text_delta':
        appendToChat(ev.text);
        break;
      case 'tool_start':
        showToolIndicator(ev.toolName);
        break;
      case 'tool_end':
        hideToolIndicator(ev.toolName);
        if (ev.exitCode !== 0) {
          showToolError(ev.toolName, ev.toolOutput);
        }
        break;
      case 'end':
        markComplete(ev.totalTokens);
        break;
    }
    events.push(ev);
  }
  return events;
}

const sluice = new Sluice({ baseURL: process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080', apiKey: process.env['SLUICE_API_KEY'] });
const session = (await sluice.sessions.create()).agent;
const events = await handleUserMessage(session, 'What is 6 * 7? Check it with Python.');
process.stdout.write(`${events.length} events\n`);
