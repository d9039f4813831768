/** Small HTTP helpers for end-to-end tests, built on the protocol package's decoders. */
import { decodeNDJSONStream, decodeSSEStream, parseExecutionEvent, type ExecutionEvent } from '@sluice/protocol';

/** An event with the time it arrived at the client (performance.now()). */
export type Timed = ExecutionEvent & { arrivedAt: number };

export async function postJSON(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** Parses a decoded JSON event, failing the test on anything outside the contract. */
export function toEvent(json: unknown): ExecutionEvent {
  const r = parseExecutionEvent(json);
  if (!r.ok) throw new Error(`not a contract event: ${r.message}: ${JSON.stringify(json)}`);
  return r.value;
}

/** Reads an SSE response to its end, checking `id:` = seq and `event:` = type on every frame. */
export async function readSSE(res: Response, onEvent?: (ev: Timed) => void, signal?: AbortSignal): Promise<Timed[]> {
  if (!res.body) throw new Error('no body');
  const out: Timed[] = [];
  for await (const msg of decodeSSEStream(res.body, signal)) {
    const ev = toEvent(JSON.parse(msg.data));
    if (msg.id !== String(ev.seq)) throw new Error(`SSE id ${msg.id} does not match seq ${ev.seq}`);
    if (msg.event !== ev.type) throw new Error(`SSE event ${msg.event} does not match type ${ev.type}`);
    const timed = { ...ev, arrivedAt: performance.now() };
    out.push(timed);
    onEvent?.(timed);
  }
  return out;
}

/** Reads an NDJSON response to its end. */
export async function readNDJSON(res: Response): Promise<ExecutionEvent[]> {
  if (!res.body) throw new Error('no body');
  const out: ExecutionEvent[] = [];
  for await (const obj of decodeNDJSONStream(res.body)) out.push(toEvent(obj));
  return out;
}

/** Runs code with `POST /stream` and returns every event. */
export async function stream(base: string, session: string, body: Record<string, unknown>): Promise<Timed[]> {
  const res = await postJSON(`${base}/api/sessions/${session}/stream`, body);
  if (res.status !== 200) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
  return readSSE(res);
}

/** Concatenated content of one stream's events. */
export function text(events: readonly ExecutionEvent[], stream: 'stdout' | 'stderr'): string {
  let s = '';
  for (const e of events) if (e.type === stream) s += e.content;
  return s;
}

/** The single `done` event, asserting it is unique and last. */
export function doneOf<E extends ExecutionEvent>(events: readonly E[]): Extract<E, { type: 'done' }> {
  const dones = events.filter((e) => e.type === 'done');
  if (dones.length !== 1) throw new Error(`expected exactly one done, got ${dones.length}`);
  const last = events[events.length - 1];
  if (!last || last.type !== 'done') throw new Error('done is not the last event');
  return last as Extract<E, { type: 'done' }>;
}

/** Asserts seq runs 1..n without gaps. */
export function assertContiguous(events: readonly ExecutionEvent[]): void {
  events.forEach((e, i) => {
    if (e.seq !== i + 1) throw new Error(`seq ${e.seq} at position ${i + 1}`);
  });
}

/** A finished run: its events (checked contiguous, one `done` last), folded per stream. */
export interface RunOutcome {
  events: Timed[];
  stdout: string;
  stderr: string;
  done: Extract<Timed, { type: 'done' }>;
}

/** Checks a complete log's shape and folds it. */
export function outcome(events: Timed[]): RunOutcome {
  assertContiguous(events);
  return { events, stdout: text(events, 'stdout'), stderr: text(events, 'stderr'), done: doneOf(events) };
}

/** Runs code with `POST /stream` and returns the checked, folded outcome. */
export async function runStream(base: string, session: string, body: Record<string, unknown>): Promise<RunOutcome> {
  return outcome(await stream(base, session, body));
}
