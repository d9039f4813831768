/**
 * Credentials of a WebSocket upgrade. Node clients send `Authorization: Bearer <key>`; browsers,
 * which cannot set headers on a WebSocket, offer the subprotocols
 * `["sluice", "sluice.auth.<base64url(key), no padding>"]`. The server selects `sluice`, never the
 * protocol that carries the key, so the key is not echoed back.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { assertNever } from '@sluice/protocol';

/** The subprotocol the server selects. */
export const WS_PROTOCOL = 'sluice';

/** Prefix of the subprotocol that carries an API key. */
export const WS_AUTH_PROTOCOL_PREFIX = 'sluice.auth.';

/** base64url without padding: what fits in a subprotocol token. */
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The subprotocol to select from those a client offered: `sluice` when offered, else none. */
export function selectProtocol(offered: ReadonlySet<string>): string | false {
  return offered.has(WS_PROTOCOL) ? WS_PROTOCOL : false;
}

/** The `sluice.auth.` key among a `Sec-WebSocket-Protocol` header's protocols, decoded (`''` if undecodable); null when absent. */
export function keyFromProtocols(header: string | undefined): string | null {
  if (header === undefined) return null;
  for (const raw of header.split(',')) {
    const p = raw.trim();
    if (!p.startsWith(WS_AUTH_PROTOCOL_PREFIX)) continue;
    const encoded = p.slice(WS_AUTH_PROTOCOL_PREFIX.length);
    // Undecodable: still a credential, refused as invalid rather than taken as absent.
    if (!BASE64URL.test(encoded)) return '';
    return Buffer.from(encoded, 'base64url').toString('utf8');
  }
  return null;
}

/** Where an upgrade's credentials came from, as an `Authorization` value to check. */
export type UpgradeCredentials =
  | { source: 'header' | 'subprotocol'; authorization: string }
  | { source: 'none' };

/** The upgrade's credentials: the `Authorization` header when present (it wins), else the subprotocol key. */
export function upgradeCredentials(headers: IncomingHttpHeaders): UpgradeCredentials {
  if (headers.authorization !== undefined) return { source: 'header', authorization: headers.authorization };
  const key = keyFromProtocols(headers['sec-websocket-protocol']);
  if (key === null) return { source: 'none' };
  return { source: 'subprotocol', authorization: `Bearer ${key}` };
}

/** Why credentials were refused, for the UNAUTHORIZED close reason (the key itself is never included). */
export function authFailureReason(creds: UpgradeCredentials, message: string): string {
  switch (creds.source) {
    case 'none':
      return 'expected an API key: Authorization: Bearer <key>, or the subprotocols sluice and sluice.auth.<base64url key>';
    case 'subprotocol':
      return 'sluice.auth subprotocol: this API key is not valid';
    case 'header':
      return message;
    default:
      return assertNever(creds, 'credentials');
  }
}
