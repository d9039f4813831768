/**
 * The messages of the WebSocket transport (docs/websocket.md). What a client sends is validated
 * here, at the edge, into one union, with errors that name the field like the HTTP API's; the
 * server's replies are encoded here too. Execution events are not re-encoded: `eventFrame` is the
 * log's stored JSON (the bytes SSE sends in `data:`) with the execution id appended.
 */
import { assertNever, describeValue, parseRunRequest, parseStdinRequest, type ErrorCode, type RunRequest } from '@sluice/protocol';

/** `execute`: run code in the socket's session; `run` is a validated run request. */
export interface ExecuteMessage {
  type: 'execute';
  request_id: string;
  run: RunRequest;
}
/** `subscribe`: send an execution's events from seq `from` (inclusive), then live until `done`. */
export interface SubscribeMessage {
  type: 'subscribe';
  execution_id: string;
  from: number;
}
/** `unsubscribe`: stop sending an execution's events (it keeps running). */
export interface UnsubscribeMessage {
  type: 'unsubscribe';
  execution_id: string;
}
/** `cancel`: stop an execution; its `done` says `cancelled`. */
export interface CancelMessage {
  type: 'cancel';
  execution_id: string;
}
/** `stdin`: write to an execution's stdin, closing it after `data` when `eof`. */
export interface StdinMessage {
  type: 'stdin';
  execution_id: string;
  data: string;
  eof: boolean;
}
/** `ping`: answered with `pong` (liveness for browsers, which cannot see ping frames). */
export interface PingMessage {
  type: 'ping';
}

/** Every message a client may send. */
export type ClientMessage = ExecuteMessage | SubscribeMessage | UnsubscribeMessage | CancelMessage | StdinMessage | PingMessage;
export type ClientMessageType = ClientMessage['type'];

/** The ids a message carried, echoed in its error so the client can match them up. */
export interface MessageIDs {
  request_id?: string;
  execution_id?: string;
}

/** A message that failed validation: the error to answer with. */
export interface RejectedMessage {
  ok: false;
  code: ErrorCode;
  message: string;
  ids: MessageIDs;
}
export type ParsedMessage = { ok: true; value: ClientMessage } | RejectedMessage;

/** The fields each message type may carry. */
const FIELDS: Record<ClientMessageType, readonly string[]> = {
  execute: ['type', 'request_id', 'code', 'language', 'mode', 'timeout', 'stdin', 'env'],
  subscribe: ['type', 'execution_id', 'from'],
  unsubscribe: ['type', 'execution_id'],
  cancel: ['type', 'execution_id'],
  stdin: ['type', 'execution_id', 'data', 'eof'],
  ping: ['type'],
};
const TYPES = Object.keys(FIELDS) as ClientMessageType[];

/** Longest `request_id` and `execution_id` accepted. */
const MAX_ID_LENGTH = 128;

/** Parses one text frame into a client message, or says what is wrong with it. */
export function parseClientMessage(text: string): ParsedMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return reject({}, `message: expected one JSON object, got malformed JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject({}, `message: expected a JSON object, got ${describeValue(value)}`);
  }
  const obj = value as Record<string, unknown>;
  const ids = idsOf(obj);
  const type = obj['type'];
  if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type)) {
    return reject(ids, `type: expected one of ${TYPES.map((t) => JSON.stringify(t)).join(', ')}, got ${describeValue(type)}`);
  }
  const t = type as ClientMessageType;
  for (const key of Object.keys(obj)) {
    if (!FIELDS[t].includes(key)) return reject(ids, `${key}: unknown field for type "${t}"; expected one of ${FIELDS[t].join(', ')}`);
  }
  switch (t) {
    case 'execute': {
      const requestID = obj['request_id'];
      if (!isID(requestID)) return reject(ids, idProblem('request_id', requestID));
      const { type: _type, request_id: _requestID, ...run } = obj;
      const r = parseRunRequest(run);
      if (!r.ok) return { ok: false, code: r.code, message: r.message, ids };
      return { ok: true, value: { type: 'execute', request_id: requestID, run: r.value } };
    }
    case 'subscribe': {
      const executionID = obj['execution_id'];
      if (!isID(executionID)) return reject(ids, idProblem('execution_id', executionID));
      const from = obj['from'] ?? 1;
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) {
        return reject(ids, `from: expected an integer >= 0 (the first seq wanted; 0 and 1 both mean the start), got ${describeValue(from)}`);
      }
      return { ok: true, value: { type: 'subscribe', execution_id: executionID, from: Math.max(1, from) } };
    }
    case 'unsubscribe':
    case 'cancel': {
      const executionID = obj['execution_id'];
      if (!isID(executionID)) return reject(ids, idProblem('execution_id', executionID));
      return { ok: true, value: { type: t, execution_id: executionID } };
    }
    case 'stdin': {
      const executionID = obj['execution_id'];
      if (!isID(executionID)) return reject(ids, idProblem('execution_id', executionID));
      const body: Record<string, unknown> = {};
      if (obj['data'] !== undefined) body['data'] = obj['data'];
      if (obj['eof'] !== undefined) body['eof'] = obj['eof'];
      const r = parseStdinRequest(body);
      if (!r.ok) return { ok: false, code: r.code, message: r.message, ids };
      return { ok: true, value: { type: 'stdin', execution_id: executionID, data: r.value.data, eof: r.value.eof === true } };
    }
    case 'ping':
      return { ok: true, value: { type: 'ping' } };
    default:
      return assertNever(t, 'message type');
  }
}

/** `{"type":"accepted","request_id":…,"execution_id":…}`. */
export function acceptedMessage(requestID: string, executionID: string): string {
  return JSON.stringify({ type: 'accepted', request_id: requestID, execution_id: executionID });
}

/**
 * `{"type":"end","execution_id":…,"last_seq":N}`: a subscribe from past the end of a finished
 * log; nothing will come (HTTP answers 204 there).
 */
export function endMessage(executionID: string, lastSeq: number): string {
  return JSON.stringify({ type: 'end', execution_id: executionID, last_seq: lastSeq });
}

/** `{"type":"pong"}`. */
export function pongMessage(): string {
  return '{"type":"pong"}';
}

/** `{"type":"error","code":…,"error":…}` plus the ids of the message it answers. */
export function errorMessage(code: ErrorCode, message: string, ids: MessageIDs = {}): string {
  return JSON.stringify({ type: 'error', code, error: message, ...ids });
}

/**
 * One event as sent on a socket: exactly the JSON SSE sends in `data:`, with
 * `,"execution_id":"…"` inserted before the closing brace. A `start` event already names its
 * execution and goes unchanged, so no key is ever repeated.
 */
export function eventFrame(entry: { readonly type: string; readonly json: string }, executionID: string): string {
  if (entry.type === 'start') return entry.json;
  return `${entry.json.slice(0, -1)},"execution_id":${JSON.stringify(executionID)}}`;
}

function isID(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_ID_LENGTH;
}

function idProblem(field: string, value: unknown): string {
  const required = value === undefined ? ' (it is required)' : '';
  return `${field}: expected a string of 1 to ${MAX_ID_LENGTH} characters${required}, got ${describeValue(value)}`;
}

/** The well-formed ids of a message, whatever else is wrong with it. */
function idsOf(obj: Record<string, unknown>): MessageIDs {
  const ids: MessageIDs = {};
  const requestID = obj['request_id'];
  const executionID = obj['execution_id'];
  if (isID(requestID)) ids.request_id = requestID;
  if (isID(executionID)) ids.execution_id = executionID;
  return ids;
}

function reject(ids: MessageIDs, message: string): RejectedMessage {
  return { ok: false, code: 'INVALID_REQUEST', message, ids };
}
