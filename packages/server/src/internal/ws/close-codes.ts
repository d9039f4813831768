/**
 * The close codes of the WebSocket transport (docs/websocket.md): RFC 6455's own where one fits,
 * 4000 + the HTTP status of the same meaning otherwise, so a client can tell why a socket ended.
 */

export const WSCloseCode = {
  /** The client closed, or the server had nothing more to say. */
  NORMAL: 1000,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
  /** A message over the size limit (set by `ws` itself). */
  MESSAGE_TOO_BIG: 1009,
  /** Too many malformed messages. */
  BAD_MESSAGES: 4400,
  /** API keys are configured and the upgrade carried no valid one. */
  UNAUTHORIZED: 4401,
  /** The session does not exist (another tenant's looks the same), or was deleted. */
  NO_SESSION: 4404,
  /** The peer stopped answering pings and reading. */
  UNRESPONSIVE: 4408,
  /** The server, or this tenant, has as many sockets open as allowed. */
  TOO_MANY_SOCKETS: 4429,
} as const;
export type WSCloseCode = (typeof WSCloseCode)[keyof typeof WSCloseCode];

/** RFC 6455 §5.5: a control frame's payload is at most 125 bytes, 2 of them the code. */
const MAX_REASON_BYTES = 123;

/** `text` cut to fit a close frame's reason, never inside a UTF-8 character. */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= MAX_REASON_BYTES) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_REASON_BYTES - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}
