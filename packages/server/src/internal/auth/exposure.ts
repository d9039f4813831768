/**
 * The rule that keeps an unauthenticated server off the network: without API keys the server
 * listens only on loopback, unless its operator says, explicitly, that something else guards it.
 */
import { isIP } from 'node:net';

/** True for `localhost`, 127.0.0.0/8, `::1` and their IPv4-mapped forms. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === 'localhost.') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    // The URL parser writes every IPv6 form the same way: ::1, and ::ffff:7fXX:XXXX for 127/8.
    let norm: string;
    try {
      norm = new URL(`http://[${h}]`).hostname;
    } catch {
      return false; // a zone id (fe80::1%eth0) is never loopback
    }
    return norm === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(norm);
  }
  return false;
}

/** Why the server must not listen as configured, or null when it may. */
export function exposureProblem(c: { host: string; apiKeys: readonly unknown[]; insecureNoAuth: boolean }): string | null {
  if (c.apiKeys.length > 0 || c.insecureNoAuth || isLoopbackHost(c.host)) return null;
  return (
    `refusing to listen on ${c.host} without API keys: anyone who can reach it could run code. ` +
    'Set SLUICE_API_KEYS or SLUICE_API_KEYS_FILE, or listen on loopback (--host 127.0.0.1), ' +
    'or, if something else already guards this address, pass --insecure-no-auth (SLUICE_INSECURE_NO_AUTH=1)'
  );
}
