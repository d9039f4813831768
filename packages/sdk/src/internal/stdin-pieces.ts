/**
 * Input for a running program, sent in pieces: a request body or WebSocket message has a size
 * limit (2 MiB, and a socket closed with MESSAGE_TOO_BIG past its frame limit), and the server
 * takes at most 1 MiB the program has not read yet (RATE_LIMITED): each piece goes once the last
 * one is taken, and a RATE_LIMITED piece is sent again after the server's Retry-After, so a large
 * write waits for the program to read instead of failing.
 */
import { RateLimitedError } from '../errors.js';

/** UTF-16 units per piece: at most 768 KiB of UTF-8 (1.5 MiB as JSON at worst), under both limits. */
export const STDIN_PIECE = 256 * 1024;

/** How long one piece may keep being refused as RATE_LIMITED (a program that stopped reading). */
const RATE_LIMITED_PATIENCE_MS = 60_000;

/** `data` cut into pieces of at most `size` units, never inside a surrogate pair; '' is one piece. */
export function* stdinPieces(data: string, size = STDIN_PIECE): Generator<[string, boolean]> {
  let i = 0;
  do {
    let end = Math.min(i + size, data.length);
    const c = data.charCodeAt(end - 1);
    if (end < data.length && end - i > 1 && c >= 0xd800 && c <= 0xdbff) end--;
    yield [data.slice(i, end), end >= data.length];
    i = end;
  } while (i < data.length);
}

/** Sends `data` piece by piece with `send(piece, eofNow)`; `eof` goes with the last piece. */
export async function sendStdin(data: string, eof: boolean, send: (piece: string, eofNow: boolean) => Promise<void>): Promise<void> {
  for (const [piece, last] of stdinPieces(data)) {
    const deadline = Date.now() + RATE_LIMITED_PATIENCE_MS;
    for (;;) {
      try {
        await send(piece, last && eof);
        break;
      } catch (err) {
        if (!(err instanceof RateLimitedError) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, Math.min(1000, (err.retryAfter ?? 0.25) * 1000)));
      }
    }
  }
}
