/** Runs a Lua script by its SHA1, sending its text only when Redis does not have it yet. */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

const shas = new Map<string, string>();

/** EVALSHA, falling back to EVAL when Redis does not have the script (first use, or after a restart). */
export async function runScript(client: Redis, script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return await client.call('EVALSHA', sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return await client.call('EVAL', script, keys.length, ...keys, ...args);
  }
}
