/**
 * What the program's stdin is: text given at once (then end of file), or our own stdin forwarded
 * as it arrives (a terminal line by line, a pipe chunk by chunk) until its end of file, so that
 * `sluice run x.py < data.txt`, `producer | sluice run x.py` and an interactive `input()` all
 * behave as they would locally.
 */
import { fstatSync, statSync, type Stats } from 'node:fs';
import type { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { StringDecoder } from 'node:string_decoder';
import type { ExecutionStream } from '@sluice/sdk';

export type StdinPlan = { kind: 'text'; text: string } | { kind: 'forward'; input: Readable };

/**
 * A regular file this small goes in the run request itself (one round trip instead of three);
 * well under the server's 2 MiB default body limit, which the code shares.
 */
const INLINE_FILE_BYTES = 256 * 1024;

/**
 * `--stdin TEXT` → that text; `--no-stdin`, code read from stdin, or `< /dev/null` → empty; a
 * small regular file on fd 0 → its content; anything else (a terminal, a pipe, a large file) →
 * forwarded.
 */
export async function planStdin(flag: string | boolean | undefined, codeFromStdin: boolean): Promise<StdinPlan> {
  if (typeof flag === 'string') return { kind: 'text', text: flag };
  if (flag === false || codeFromStdin) return { kind: 'text', text: '' };
  let stat;
  try {
    stat = fstatSync(0);
  } catch {
    return { kind: 'text', text: '' }; // fd 0 is closed
  }
  if (isDevNull(stat)) return { kind: 'text', text: '' };
  if (stat.isFile() && stat.size <= INLINE_FILE_BYTES) return { kind: 'text', text: await text(process.stdin) };
  return { kind: 'forward', input: process.stdin };
}

/** fd 0 is /dev/null (scripts, CI, a spawn with stdin ignored): nothing to forward. */
function isDevNull(stat: Stats): boolean {
  if (!stat.isCharacterDevice()) return false;
  try {
    return statSync('/dev/null').rdev === stat.rdev;
  } catch {
    return false;
  }
}

/**
 * Sends `input` to the program's stdin as it arrives, then end of file. Stops quietly when the
 * execution is over or `signal` aborts (the program just sees no more input). Text only: the
 * API's stdin is a string, so bytes that are not UTF-8 become U+FFFD.
 */
export async function forwardStdin(input: Readable, stream: ExecutionStream, signal: AbortSignal): Promise<void> {
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (signal.aborted) return;
      const piece = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      // One request at a time: the loop pulls the next chunk only once this one is delivered.
      if (piece !== '') await stream.stdin(piece);
    }
    if (signal.aborted) return;
    const rest = decoder.end();
    if (rest !== '') await stream.stdin(rest);
    await stream.closeStdin();
  } catch {
    // The execution finished (or the server is gone): nobody reads this stdin any more.
  }
}
