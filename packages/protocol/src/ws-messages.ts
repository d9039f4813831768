/**
 * The messages of the WebSocket transport (docs/websocket.md), both ways, each direction one
 * discriminated union with its encoder and its validator. What a client sends is validated by
 * `parseClientMessage` (the server's edge) with errors that name the field like the HTTP API's;
 * what the server answers is read by `parseServerMessage` (the client's edge). Two variants are
 * nested in their decoded form and flat on the wire: an `execute` carries its run request's
 * fields beside `type` and `request_id`, and an event is the log's JSON with `execution_id`
 * appended (`eventFrame`, which never re-encodes the stored bytes).
 */
import { assertNever } from './assert-never.js';
import type { ErrorCode } from './errors.js';
import type { ExecutionEvent } from './events.js';
import { parseExecutionEvent } from './parse-event.js';
import type { AgentEvent } from './agent-events.js';
import { parseAgentEvent } from './parse-agent-event.js';
import { AGENT_REQUEST_KEYS, describeValue, parseAgentRequest, parseRunRequest, parseStdinRequest, type AgentRequest, type RunRequest } from './requests.js';

// ---- client → server ---------------------------------------------------------------------

/** `execute`: run code in the socket's session; `run` is a validated run request (flat on the wire). */
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

/** `agent`: start an agent run in the socket's session; `agent` is a validated agent request (flat on the wire). */
export interface AgentMessage {
  type: 'agent';
  request_id: string;
  agent: AgentRequest;
}
/** A `subscribe` naming a `run_id`: send an agent run's events from seq `from`, then live until `end`. */
export interface AgentSubscribeMessage {
  type: 'agent_subscribe';
  run_id: string;
  from: number;
}
/** An `unsubscribe` naming a `run_id`. */
export interface AgentUnsubscribeMessage {
  type: 'agent_unsubscribe';
  run_id: string;
}
/** A `cancel` naming a `run_id`: stop the agent run (model call and running tool). */
export interface AgentCancelMessage {
  type: 'agent_cancel';
  run_id: string;
}

/**
 * Every message a client may send. The `agent_*` variants are the decoded form of `subscribe`,
 * `unsubscribe` and `cancel` carrying a `run_id` instead of an `execution_id`.
 */
export type ClientMessage =
  | ExecuteMessage
  | SubscribeMessage
  | UnsubscribeMessage
  | CancelMessage
  | StdinMessage
  | PingMessage
  | AgentMessage
  | AgentSubscribeMessage
  | AgentUnsubscribeMessage
  | AgentCancelMessage;
/** The `type` of a client message. */
export type ClientMessageType = ClientMessage['type'];

/** The ids a message carried, echoed in its error so the client can match them up. */
export interface MessageIDs {
  request_id?: string;
  execution_id?: string;
  run_id?: string;
}

/** A client message that failed validation: the error to answer with, and the ids to echo. */
export interface RejectedMessage {
  ok: false;
  code: ErrorCode;
  message: string;
  ids: MessageIDs;
}
/** Outcome of {@link parseClientMessage}: the message, or why it was refused. */
export type ParsedMessage = { ok: true; value: ClientMessage } | RejectedMessage;

/** The wire types a client may send (the `agent_*` decoded forms travel as these). */
type WireType = Exclude<ClientMessageType, 'agent_subscribe' | 'agent_unsubscribe' | 'agent_cancel'>;

/** The fields each message type may carry. */
const FIELDS: Record<WireType, readonly string[]> = {
  execute: ['type', 'request_id', 'code', 'language', 'mode', 'timeout', 'stdin', 'env'],
  subscribe: ['type', 'execution_id', 'run_id', 'from'],
  unsubscribe: ['type', 'execution_id', 'run_id'],
  cancel: ['type', 'execution_id', 'run_id'],
  stdin: ['type', 'execution_id', 'data', 'eof'],
  ping: ['type'],
  agent: ['type', 'request_id', ...AGENT_REQUEST_KEYS.filter((k) => k !== 'heartbeat' && k !== 'on_disconnect')],
};
// Pure: a bundle that never parses client messages (the SDK's) drops this table.
const TYPES = /* @__PURE__ */ Object.keys(FIELDS) as WireType[];

/** Longest `request_id` and `execution_id` accepted. */
const MAX_ID_LENGTH = 128;

/** Parses one text frame into a client message, or says what is wrong with it (field, expectation, what arrived). */
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
  const t = type as WireType;
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
      const target = targetOf(obj, ids);
      if (!target.ok) return target;
      const from = obj['from'] ?? 1;
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) {
        return reject(ids, `from: expected an integer >= 0 (the first seq wanted; 0 and 1 both mean the start), got ${describeValue(from)}`);
      }
      const first = Math.max(1, from);
      if (target.run_id !== undefined) return { ok: true, value: { type: 'agent_subscribe', run_id: target.run_id, from: first } };
      return { ok: true, value: { type: 'subscribe', execution_id: target.execution_id, from: first } };
    }
    case 'unsubscribe':
    case 'cancel': {
      const target = targetOf(obj, ids);
      if (!target.ok) return target;
      if (target.run_id !== undefined) return { ok: true, value: { type: t === 'cancel' ? 'agent_cancel' : 'agent_unsubscribe', run_id: target.run_id } };
      return { ok: true, value: { type: t, execution_id: target.execution_id } };
    }
    case 'agent': {
      const requestID = obj['request_id'];
      if (!isID(requestID)) return reject(ids, idProblem('request_id', requestID));
      const { type: _type, request_id: _requestID, ...fields } = obj;
      const r = parseAgentRequest(fields);
      if (!r.ok) return { ok: false, code: r.code, message: r.message, ids };
      return { ok: true, value: { type: 'agent', request_id: requestID, agent: r.value } };
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

/**
 * One client message as a text frame: an `execute`'s run fields go flat beside `type` and
 * `request_id`, and a `stdin`'s `eof` is written only when true. `parseClientMessage` reads it back.
 */
export function encodeClientMessage(m: ClientMessage): string {
  switch (m.type) {
    case 'execute':
      return JSON.stringify({ type: 'execute', request_id: m.request_id, ...m.run });
    case 'agent': {
      // A socket has no use for SSE's heartbeat or a dropped stream's policy.
      const { heartbeat: _h, on_disconnect: _d, ...fields } = m.agent;
      return JSON.stringify({ type: 'agent', request_id: m.request_id, ...fields });
    }
    case 'agent_subscribe':
      return JSON.stringify({ type: 'subscribe', run_id: m.run_id, from: m.from });
    case 'agent_unsubscribe':
      return JSON.stringify({ type: 'unsubscribe', run_id: m.run_id });
    case 'agent_cancel':
      return JSON.stringify({ type: 'cancel', run_id: m.run_id });
    case 'stdin':
      return JSON.stringify(m.eof ? { type: 'stdin', execution_id: m.execution_id, data: m.data, eof: true } : { type: 'stdin', execution_id: m.execution_id, data: m.data });
    case 'subscribe':
    case 'unsubscribe':
    case 'cancel':
    case 'ping':
      return JSON.stringify(m);
    default:
      return assertNever(m, 'message');
  }
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
  const runID = obj['run_id'];
  if (isID(requestID)) ids.request_id = requestID;
  if (isID(executionID)) ids.execution_id = executionID;
  if (isID(runID)) ids.run_id = runID;
  return ids;
}

/** What a subscribe, unsubscribe or cancel is about: exactly one of `execution_id` and `run_id`. */
function targetOf(obj: Record<string, unknown>, ids: MessageIDs): { ok: true; execution_id: string; run_id?: undefined } | { ok: true; run_id: string } | RejectedMessage {
  const executionID = obj['execution_id'];
  const runID = obj['run_id'];
  if (executionID !== undefined && runID !== undefined) return reject(ids, 'execution_id, run_id: expected one of them (an execution or an agent run), got both');
  if (runID !== undefined) return isID(runID) ? { ok: true, run_id: runID } : reject(ids, idProblem('run_id', runID));
  if (!isID(executionID)) return reject(ids, idProblem('execution_id', executionID).replace(' characters', ' characters, or a run_id'));
  return { ok: true, execution_id: executionID };
}

function reject(ids: MessageIDs, message: string): RejectedMessage {
  return { ok: false, code: 'INVALID_REQUEST', message, ids };
}

// ---- server → client ---------------------------------------------------------------------

/** `accepted`: an `execute` was queued as execution `execution_id`; it comes before any of its events. */
export interface AcceptedMessage {
  type: 'accepted';
  request_id: string;
  execution_id: string;
}
/** `end`: a `subscribe` came from past the end of a finished log; nothing follows (HTTP's 204). */
export interface EndMessage {
  type: 'end';
  execution_id: string;
  last_seq: number;
}
/** `pong`: the answer to a `ping`, after the answers to every message sent before it. */
export interface PongMessage {
  type: 'pong';
}
/**
 * `error` without a `seq`: a message was refused. `code` is an {@link ErrorCode} (typed as a
 * string so that a newer server's codes still decode); the ids are those of the refused message.
 */
export interface RefusalMessage {
  type: 'error';
  code: string;
  error: string;
  request_id?: string;
  execution_id?: string;
  run_id?: string;
}
/** An execution's event (`type` `event` once decoded; on the wire, the event's JSON plus `execution_id`). */
export interface EventMessage {
  type: 'event';
  execution_id: string;
  event: ExecutionEvent;
}

/** `accepted` naming a `run_id`: an `agent` message started run `run_id`; it comes before any of its events. */
export interface AgentAcceptedMessage {
  type: 'agent_accepted';
  request_id: string;
  run_id: string;
}
/** `end` naming a `run_id` (without a `seq`): a subscribe came from past the end of a finished run's log. */
export interface AgentEndMessage {
  type: 'agent_end';
  run_id: string;
  last_seq: number;
}
/** An agent run's event (on the wire, the event's JSON plus `run_id`). */
export interface AgentEventMessage {
  type: 'agent_event';
  run_id: string;
  event: AgentEvent;
}

/** Every message a server sends, decoded; the `agent_*` variants are the wire's messages that carry a `run_id`. */
export type ServerMessage = AcceptedMessage | EndMessage | PongMessage | RefusalMessage | EventMessage | AgentAcceptedMessage | AgentEndMessage | AgentEventMessage;

/**
 * Outcome of {@link parseServerMessage}. A failure is the server's bug; `eventOf` names the
 * execution when the message was one of its events (it had a `seq`), whose stream cannot go on.
 */
export type ParsedServerMessage = { ok: true; value: ServerMessage } | { ok: false; message: string; eventOf?: string };

/**
 * Reads one text frame from the server. Unknown extra fields are ignored. A refusal is read
 * leniently (code `INTERNAL` and a stock text when those are malformed) so that it still ends
 * what it answers, and an `end` without a numeric `last_seq` reads as 0 (it still ends its stream).
 */
export function parseServerMessage(text: string): ParsedServerMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `message: expected one JSON object, got malformed JSON (${(err as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: `message: expected a JSON object, got ${describeValue(value)}` };
  }
  const msg = value as Record<string, unknown>;
  const type = msg['type'];
  const requestID = typeof msg['request_id'] === 'string' ? msg['request_id'] : undefined;
  const executionID = typeof msg['execution_id'] === 'string' ? msg['execution_id'] : undefined;
  const seq = msg['seq'];
  const runID = typeof msg['run_id'] === 'string' ? msg['run_id'] : undefined;
  if (runID !== undefined && executionID === undefined) {
    if (typeof seq === 'number') {
      const parsed = parseAgentEvent(msg);
      if (!parsed.ok) return { ok: false, message: parsed.message, eventOf: runID };
      return { ok: true, value: { type: 'agent_event', run_id: runID, event: parsed.value } };
    }
    if (type === 'accepted') {
      if (requestID === undefined) return { ok: false, message: 'accepted: expected a request_id with the run_id' };
      return { ok: true, value: { type: 'agent_accepted', request_id: requestID, run_id: runID } };
    }
    if (type === 'end') {
      const lastSeq = msg['last_seq'];
      return { ok: true, value: { type: 'agent_end', run_id: runID, last_seq: typeof lastSeq === 'number' ? lastSeq : 0 } };
    }
  }
  switch (type) {
    case 'accepted':
      if (requestID === undefined || executionID === undefined) return { ok: false, message: 'accepted: expected a request_id and an execution_id' };
      return { ok: true, value: { type: 'accepted', request_id: requestID, execution_id: executionID } };
    case 'pong':
      return { ok: true, value: { type: 'pong' } };
    case 'end': {
      const lastSeq = msg['last_seq'];
      if (executionID === undefined) return { ok: false, message: `end.execution_id: expected a string, got ${describeValue(msg['execution_id'])}` };
      return { ok: true, value: { type: 'end', execution_id: executionID, last_seq: typeof lastSeq === 'number' ? lastSeq : 0 } };
    }
    default:
      break;
  }
  if (type === 'error' && typeof seq !== 'number') {
    const code = msg['code'];
    const error = msg['error'];
    const refusal: RefusalMessage = {
      type: 'error',
      code: typeof code === 'string' ? code : 'INTERNAL',
      error: typeof error === 'string' ? error : 'the server refused a message',
    };
    if (requestID !== undefined) refusal.request_id = requestID;
    if (executionID !== undefined) refusal.execution_id = executionID;
    if (runID !== undefined) refusal.run_id = runID;
    return { ok: true, value: refusal };
  }
  if (typeof seq !== 'number') return { ok: false, message: `message: expected a known type or an event with a seq, got type ${describeValue(type)}` };
  if (executionID === undefined) return { ok: false, message: `event.execution_id: expected a string, got ${describeValue(msg['execution_id'])}` };
  const parsed = parseExecutionEvent(msg);
  if (!parsed.ok) return { ok: false, message: parsed.message, eventOf: executionID };
  return { ok: true, value: { type: 'event', execution_id: executionID, event: parsed.value } };
}

/** `{"type":"accepted","request_id":…,"execution_id":…}`. */
export function acceptedMessage(requestID: string, executionID: string): string {
  const m: AcceptedMessage = { type: 'accepted', request_id: requestID, execution_id: executionID };
  return JSON.stringify(m);
}

/**
 * `{"type":"end","execution_id":…,"last_seq":N}`: a subscribe from past the end of a finished
 * log; nothing will come (HTTP answers 204 there).
 */
export function endMessage(executionID: string, lastSeq: number): string {
  const m: EndMessage = { type: 'end', execution_id: executionID, last_seq: lastSeq };
  return JSON.stringify(m);
}

/** `{"type":"pong"}`. */
export function pongMessage(): string {
  return '{"type":"pong"}';
}

/** `{"type":"error","code":…,"error":…}` plus the ids of the message it answers. */
export function errorMessage(code: ErrorCode, message: string, ids: MessageIDs = {}): string {
  const m: RefusalMessage = { type: 'error', code, error: message, ...ids };
  return JSON.stringify(m);
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

/** `{"type":"accepted","request_id":…,"run_id":…}`: an `agent` message started a run. */
export function agentAcceptedMessage(requestID: string, runID: string): string {
  return JSON.stringify({ type: 'accepted', request_id: requestID, run_id: runID });
}

/** `{"type":"end","run_id":…,"last_seq":N}`: a subscribe from past the end of a finished run's log. */
export function agentEndMessage(runID: string, lastSeq: number): string {
  return JSON.stringify({ type: 'end', run_id: runID, last_seq: lastSeq });
}

/**
 * One agent event as sent on a socket: the log's JSON with `,"run_id":"…"` inserted before the
 * closing brace; `agent_start` already names its run and goes unchanged.
 */
export function agentEventFrame(entry: { readonly type: string; readonly json: string }, runID: string): string {
  if (entry.type === 'agent_start') return entry.json;
  return `${entry.json.slice(0, -1)},"run_id":${JSON.stringify(runID)}}`;
}
