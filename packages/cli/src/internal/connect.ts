/**
 * Where the client commands find the server: `--url`, else `SLUICE_URL`, else the address
 * `sluice serve` listens on by default; the API key from `SLUICE_API_KEY` only (a flag would
 * show the key to every user of the machine in `ps`).
 */
import type { Command } from 'commander';
import { Sluice, type Transport, type WebSocketConstructor } from '@sluice/sdk';
import { usageError } from './cli-error.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The flags every client command takes. */
export interface ConnectFlags {
  url?: string | undefined;
}

/** Adds `--url` to a client command. */
export function withServerOption(cmd: Command): Command {
  return cmd.option('--url <url>', `server URL (default: $SLUICE_URL, else ${DEFAULT_URL})`);
}

/** The server URL these flags and the environment name. */
export function serverURL(flags: ConnectFlags): string {
  return flags.url ?? nonEmpty(process.env['SLUICE_URL']) ?? DEFAULT_URL;
}

/** A client for the server the flags name; `transport` loads a WebSocket class when Node has none. */
export async function connect(flags: ConnectFlags, transport: Transport = 'sse'): Promise<Sluice> {
  const baseURL = serverURL(flags);
  const WebSocket = transport === 'websocket' ? await webSocketClass() : undefined;
  try {
    return new Sluice({ baseURL, apiKey: nonEmpty(process.env['SLUICE_API_KEY']), transport, WebSocket });
  } catch (err: unknown) {
    // The SDK names its own option (baseURL); the user typed --url or SLUICE_URL.
    if (err instanceof TypeError) throw usageError(`--url (or SLUICE_URL): ${err.message.replace(/^baseURL: /, '')}`);
    throw err;
  }
}

/** Node 22+ has a global WebSocket; Node 20 gets the `ws` package's, loaded only when asked for. */
async function webSocketClass(): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global === 'function') return global as WebSocketConstructor;
  const ws = await import('ws');
  return ws.default;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
