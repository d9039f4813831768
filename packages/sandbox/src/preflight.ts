/**
 * Checks that this host can run sandboxes: bubblewrap is installed, and a trivial sandboxed
 * command really runs (user namespaces allowed, setpriv present when we are root).
 */
import { access, constants } from 'node:fs/promises';

/** Where Debian installs bubblewrap, then the other usual places. */
const BWRAP_CANDIDATES = ['/usr/bin/bwrap', '/usr/local/bin/bwrap', '/bin/bwrap'];

/** Absolute path of the bwrap binary, or undefined when it is not installed. */
export async function findBubblewrap(): Promise<string | undefined> {
  for (const p of BWRAP_CANDIDATES) {
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** The command that installs bubblewrap on Debian and Ubuntu. */
export const INSTALL_BUBBLEWRAP = 'apt-get install -y bubblewrap';

/** True when this process runs as root (and so must drop privileges before bwrap). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
