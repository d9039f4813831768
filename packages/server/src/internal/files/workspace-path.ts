/**
 * Validates a path the files API received, before anything touches the disk. Paths are
 * relative to /workspace; anything that could leave it is refused rather than normalised, so
 * the answer is a clear error and never "some other file". Look-alike characters (fullwidth
 * dots, U+2215) are plain file names on Linux and are kept as they are: normalising them
 * (NFKC) is what would turn them into `..`.
 */
import type { Validated } from '@sluice/protocol';

/** Longest path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest single name, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255;

/** The path's segments, or the error to answer with. An empty path (`""`, `"/"`-free) means the workspace itself. */
export function parseWorkspacePath(raw: string, field = 'path'): Validated<string[]> {
  const fail = (why: string): Validated<string[]> => ({
    ok: false,
    code: 'INVALID_REQUEST',
    message: `${field}: expected a path inside /workspace (relative, no "..", no NUL, no backslash), got ${JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)}: ${why}`,
  });
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) return fail(`longer than ${MAX_PATH_BYTES} bytes`);
  // eslint-style control check without a regex literal containing control characters.
  for (const ch of raw) {
    const c = ch.codePointAt(0) ?? 0;
    if (c === 0) return fail('it contains a NUL byte');
    if (c < 0x20 || c === 0x7f) return fail('it contains a control character');
  }
  if (raw.includes('\\')) return fail('backslashes are not path separators here; use "/"');
  if (raw.startsWith('/')) return fail('it is absolute; give it relative to /workspace');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  for (const s of segments) {
    if (s === '..') return fail('".." would leave the workspace');
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) return fail(`a name is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return { ok: true, value: segments };
}
