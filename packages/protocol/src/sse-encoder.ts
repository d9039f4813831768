/**
 * Server-sent events framing (WHATWG HTML, "Server-sent events", §9.2.5 "Parsing an event
 * stream" and §9.2.6 "Interpreting an event stream"). The encoders here only ever emit
 * complete messages ending in a blank line, so any sequence of their outputs is a valid
 * `text/event-stream` body that {@link SSEDecoder} (or a browser's `EventSource`) reads back.
 */

/** One message to frame with {@link encodeSSE}. */
export interface SSEEncodeInput {
  /** Payload; line breaks in it become separate `data:` lines (and decode back as LF). */
  data: string;
  /** Event type; omitted means the receiver's default, `message`. No CR or LF. */
  event?: string;
  /** Sets the receiver's last event ID (sent back as `Last-Event-ID` on reconnection). No CR, LF or NUL. */
  id?: string | number;
  /** Reconnection time in milliseconds: a non-negative integer. */
  retry?: number;
}

/** Every line terminator the stream format knows: CRLF, then a lone CR or LF (§9.2.5 `end-of-line`). */
const LINE_BREAK = /\r\n|\r|\n/;
const CR_OR_LF = /[\r\n]/;
const CR_LF_OR_NUL = /[\r\n\0]/;

/**
 * Frames one message as `retry`, `id`, `event` and `data` fields followed by a blank line.
 *
 * `data` is split on CRLF, CR and LF into one `data:` line each, because a raw line break
 * inside a field value would end the field; the receiver joins the lines with LF, so every
 * line break arrives as LF (the format has no way to carry a CR in data). A data value that
 * is empty or ends in a line break still round-trips: `""` frames as one empty `data:` line.
 * Each field is written as `name: value`: the receiver strips exactly one space after the
 * colon, so values that themselves start with a space survive.
 *
 * @throws TypeError when `event` contains CR or LF, `id` contains CR, LF or NUL (a receiver
 *   ignores such an id, §9.2.6), or a numeric `id` is not finite.
 * @throws RangeError when `retry` is not a non-negative safe integer (the receiver only accepts
 *   ASCII digits).
 */
export function encodeSSE(msg: SSEEncodeInput): string {
  let out = '';
  if (msg.retry !== undefined) {
    if (!Number.isSafeInteger(msg.retry) || msg.retry < 0) {
      throw new RangeError(`SSE retry must be a non-negative integer of milliseconds, got ${String(msg.retry)}`);
    }
    out += `retry: ${msg.retry}\n`;
  }
  if (msg.id !== undefined) {
    if (typeof msg.id === 'number' && !Number.isFinite(msg.id)) {
      throw new TypeError(`SSE id must be a finite number or a string, got ${String(msg.id)}`);
    }
    const id = String(msg.id);
    if (CR_LF_OR_NUL.test(id)) throw new TypeError(`SSE id must not contain CR, LF or NUL: ${JSON.stringify(id)}`);
    out += `id: ${id}\n`;
  }
  if (msg.event !== undefined) {
    if (CR_OR_LF.test(msg.event)) throw new TypeError(`SSE event type must not contain CR or LF: ${JSON.stringify(msg.event)}`);
    out += `event: ${msg.event}\n`;
  }
  for (const line of msg.data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Frames a comment, e.g. the `: ping` heartbeat that keeps proxies from timing out an idle
 * stream. Receivers ignore comment lines (§9.2.6); the trailing blank line dispatches nothing
 * because it is only ever written between complete messages.
 *
 * @throws TypeError when `text` contains CR or LF (it would end the comment early).
 */
export function encodeSSEComment(text: string): string {
  if (CR_OR_LF.test(text)) throw new TypeError(`SSE comment must not contain CR or LF: ${JSON.stringify(text)}`);
  return `: ${text}\n\n`;
}

/**
 * Frames one execution event: `id: <seq>`, `event: <type>`, `data: <json>`, blank line. This is
 * the server's hot path, so it validates nothing; callers must keep the contract:
 *
 * - `seq` is the event's sequence number (a positive integer), so a reconnecting client's
 *   `Last-Event-ID` names the last event it received;
 * - `type` is one of `EVENT_TYPES` (none contains CR or LF);
 * - `json` is the output of `JSON.stringify`, which escapes every control character
 *   (U+0000–U+001F), so it never contains a raw CR or LF and needs no splitting into
 *   several `data:` lines. (U+2028/U+2029 stay raw, which is fine: they are not SSE line
 *   terminators.)
 */
export function encodeEventSSE(seq: number, type: string, json: string): string {
  return `${encodeEventSSEHead(seq, type)}${json}${SSE_EVENT_END}`;
}

/**
 * encodeEventSSE in three pieces, `head`, the JSON, {@link SSE_EVENT_END}, for a writer that
 * sends a long event's JSON as it is instead of copying it into one string with its frame.
 */
export function encodeEventSSEHead(seq: number, type: string): string {
  return `id: ${seq}\nevent: ${type}\ndata: `;
}

/** What follows an event's JSON in its SSE frame (see encodeEventSSEHead). */
export const SSE_EVENT_END = '\n\n';
