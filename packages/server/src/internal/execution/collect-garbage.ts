/**
 * Asks V8 for a full collection now. After a big log spills, its strings are garbage, but V8
 * sizes its next collection by the heap it last saw live (a multiple of it): left alone, the
 * server holds that garbage until the next log has grown as large, or until idle (seconds), so
 * RSS would grow to twice the largest log before it falls. Collecting once after a large spill
 * returns the memory at once; the pause is the marking of what is live, not of the garbage.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/** Runs a full garbage collection (a no-op where V8 does not offer one). */
export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      // The flag makes new contexts carry `gc`; the main context and its code are unaffected.
      setFlagsFromString('--expose-gc');
      const found: unknown = runInNewContext('typeof gc === "function" ? gc : null');
      gc = typeof found === 'function' ? (found as () => void) : null;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
