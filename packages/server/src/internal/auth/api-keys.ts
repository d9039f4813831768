/**
 * API keys and the tenants they stand for. A key is a bearer token; its tenant id (the owner of
 * every session and execution made with it) is a hash of the key, so the key itself is never
 * stored beside sessions, shown, or logged. Presented keys are compared in constant time: both
 * sides are hashed with SHA-256 first, so `timingSafeEqual` always compares 32 bytes and neither
 * the content nor the length of a key leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** One configured key, as read from `SLUICE_API_KEYS` or `SLUICE_API_KEYS_FILE`. */
export interface APIKey {
  /** Optional label for logs (`name:key`); null when the entry was a bare key. */
  name: string | null;
  key: string;
}

/** Who made a request: the owner id of what it creates and a label for logs. */
export interface Tenant {
  /** Stable across restarts, derived from the key; never the key. */
  id: string;
  /** The key's name, or `key-` and the first characters of the id. */
  label: string;
}

/** Why a request was not authenticated (RFC 6750 error codes). */
export type AuthFailure = { reason: 'missing' | 'malformed' | 'invalid'; message: string };

/** RFC 6750 b64token, at least 16 characters: `openssl rand -hex 32` fits. */
const KEY_PATTERN = /^[A-Za-z0-9\-._~+/]{16,}=*$/;
const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const MIN_KEY_LENGTH = 16;

/**
 * Parses key entries: `key` or `name:key`, one per line (a keys file, `#` starts a comment line)
 * or comma-separated (the environment variable). Throws with the source and the entry's position,
 * never the key itself.
 */
export function parseAPIKeys(text: string, source: string, separator: 'line' | 'comma'): APIKey[] {
  const entries = separator === 'line' ? text.split(/\r?\n/) : text.split(',');
  const keys: APIKey[] = [];
  entries.forEach((raw, i) => {
    const entry = raw.trim();
    if (entry === '' || (separator === 'line' && entry.startsWith('#'))) return;
    const where = separator === 'line' ? `${source} line ${i + 1}` : `${source} entry ${i + 1}`;
    const colon = entry.indexOf(':');
    const name = colon === -1 ? null : entry.slice(0, colon);
    const key = colon === -1 ? entry : entry.slice(colon + 1);
    if (name !== null && !NAME_PATTERN.test(name)) {
      throw new Error(`${where}: expected "name:key" with a name of letters, digits, ".", "_" or "-" (1 to 64), got a name of ${name.length} characters`);
    }
    if (!KEY_PATTERN.test(key)) {
      const why = key.length < MIN_KEY_LENGTH ? `${key.length} characters` : 'other characters';
      throw new Error(
        `${where}: expected a key of at least ${MIN_KEY_LENGTH} characters from A-Z a-z 0-9 - . _ ~ + / (then optional "="), got ${why}; ` +
          'generate one with: openssl rand -hex 32',
      );
    }
    keys.push({ name, key });
  });
  return keys;
}

/** Checks a list of keys for duplicates (keys or names); throws naming the duplicate's name or position. */
export function checkUniqueKeys(keys: readonly APIKey[]): void {
  const seenKeys = new Set<string>();
  const seenNames = new Set<string>();
  keys.forEach((k, i) => {
    if (seenKeys.has(k.key)) throw new Error(`API keys: key ${k.name ?? `#${i + 1}`} is listed twice; each key must be unique`);
    seenKeys.add(k.key);
    if (k.name !== null) {
      if (seenNames.has(k.name)) throw new Error(`API keys: the name ${JSON.stringify(k.name)} is used twice; names label tenants in logs and must be unique`);
      seenNames.add(k.name);
    }
  });
}

/** The tenant id of a key: a domain-separated SHA-256, 128 bits in hex. */
export function tenantID(key: string): string {
  return createHash('sha256').update('sluice-tenant\u0000').update(key).digest('hex').slice(0, 32);
}

/** The configured keys, ready to authenticate `Authorization` headers. */
export class KeyRing {
  private readonly entries: { digest: Buffer; tenant: Tenant }[];

  constructor(keys: readonly APIKey[]) {
    checkUniqueKeys(keys);
    this.entries = keys.map((k) => {
      const id = tenantID(k.key);
      return { digest: sha256(k.key), tenant: { id, label: k.name ?? `key-${id.slice(0, 8)}` } };
    });
  }

  /** True when keys are configured, i.e. every request needs one. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The tenant of an `Authorization: Bearer <key>` header, or why there is none. */
  authenticate(authorization: string | undefined): Tenant | AuthFailure {
    if (authorization === undefined || authorization.trim() === '') {
      return { reason: 'missing', message: 'Authorization: expected "Bearer <API key>", got nothing' };
    }
    const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization);
    if (!m?.[1]) {
      const scheme = authorization.trim().split(/[ \t]/)[0] ?? '';
      const got = /^bearer$/i.test(scheme) ? 'Bearer without a key' : `the ${JSON.stringify(scheme.slice(0, 20))} scheme`;
      return { reason: 'malformed', message: `Authorization: expected "Bearer <API key>", got ${got}` };
    }
    const presented = sha256(m[1]);
    // Compare with every key, without stopping early, so the time does not say which one matched.
    let found: Tenant | null = null;
    for (const e of this.entries) {
      if (timingSafeEqual(presented, e.digest) && found === null) found = e.tenant;
    }
    return found ?? { reason: 'invalid', message: 'Authorization: this API key is not valid' };
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
