/** `SESSION:PATH`, the way `files` commands name a file in a session's workspace (as scp does). */
import { usageError } from './cli-error.js';

export interface SessionPath {
  session: string;
  /** Relative to the workspace; '' for the workspace itself. */
  path: string;
}

/** Splits `SESSION:PATH` at its first colon (session ids have none); `what` names the argument in errors. */
export function parseSessionPath(spec: string, what: string): SessionPath {
  const colon = spec.indexOf(':');
  if (colon <= 0) throw usageError(`${what}: expected SESSION:PATH (e.g. my-session:data/input.csv), got ${JSON.stringify(spec)}`);
  // `/workspace/x` is how the program sees it; the files API wants it relative.
  const path = spec.slice(colon + 1).replace(/^\/workspace(?=\/|$)/, '').replace(/^\/+/, '');
  return { session: spec.slice(0, colon), path };
}
