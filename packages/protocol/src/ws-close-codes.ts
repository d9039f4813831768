/**
 * The close codes of the WebSocket transport (docs/websocket.md): RFC 6455's own where one fits,
 * 4000 + the HTTP status of the same meaning otherwise, so a client can tell why a socket ended.
 */

/** Every close code of the WebSocket transport by name; the server sends all but `CLIENT_PING_TIMEOUT`. */
export const WSCloseCode = {
  /** The client closed, or the server had nothing more to say. */
  NORMAL: 1000,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
  /** A message over the size limit (set by `ws` itself). */
  MESSAGE_TOO_BIG: 1009,
  /**
   * Sent by a client (the SDK) whose pings went unanswered; browsers let a page send only 1000
   * and 3000–4999, and 4000 is the one such code the server never sends.
   */
  CLIENT_PING_TIMEOUT: 4000,
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
/** One of the {@link WSCloseCode} values. */
export type WSCloseCode = (typeof WSCloseCode)[keyof typeof WSCloseCode];

