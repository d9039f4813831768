/**
 * The little of the WebSocket API the SDK uses, typed structurally so that both a browser's
 * `WebSocket` and the `ws` package's class fit `new Sluice({ WebSocket })` without a cast.
 */

/** An open or opening socket (the WHATWG `WebSocket` interface, as far as the SDK needs it). */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Bytes queued by `send` and not yet handed to the network. */
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

/** A WebSocket class: `globalThis.WebSocket` in browsers (and Node 22+), or `ws`'s in Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `readyState` of an open socket. */
export const WS_OPEN = 1;
