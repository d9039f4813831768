/** HTTP and polling helpers for the scale-out and Redis tests: runs, streams and resumes against any node of a cluster. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionEvent } from '@sluice/protocol';
import { readSSE, type Timed } from './client.js';

/** Request options: a tenant's key, an abort signal, extra headers. */
export interface Call {
  key?: string;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** fetch with the tenant's bearer key and a JSON body. */
export async function call(base: string, method: string, path: string, body?: unknown, c: Call = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(c.headers ?? {}) };
  if (c.key !== undefined) headers['authorization'] = `Bearer ${c.key}`;
  if (body !== undefined && !(body instanceof Uint8Array)) headers['content-type'] = 'application/json';
  return fetch(`${base}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) }),
    ...(c.signal ? { signal: c.signal } : {}),
  });
}

/** A fresh session id (unique in the shared Redis). */
export function sessionId(label: string): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

/** `POST /api/sessions` with this id; the session as answered. */
export async function createSession(base: string, id: string, c: Call = {}): Promise<Record<string, unknown>> {
  const res = await call(base, 'POST', '/api/sessions', { id }, c);
  const text = await res.text();
  assert.equal(res.status, 201, `create session ${id} on ${base}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** `POST /stream`: the open SSE response and the execution id from its headers. */
export async function startStream(base: string, session: string, body: Record<string, unknown>, c: Call = {}): Promise<{ res: Response; id: string }> {
  const res = await call(base, 'POST', `/api/sessions/${session}/stream`, body, c);
  if (res.status !== 200) assert.fail(`stream on ${base} answered ${res.status}: ${await res.text()}`);
  const id = res.headers.get('sluice-execution-id');
  assert.ok(id, 'Sluice-Execution-Id header');
  return { res, id };
}

/** `GET /api/executions/{id}/events` after `Last-Event-ID: lastSeen` (from the start when undefined). */
export async function follow(base: string, executionId: string, lastSeen: number | undefined, c: Call = {}): Promise<Response> {
  return call(base, 'GET', `/api/executions/${executionId}/events`, undefined, {
    ...c,
    headers: { accept: 'text/event-stream', ...(lastSeen === undefined ? {} : { 'last-event-id': String(lastSeen) }), ...(c.headers ?? {}) },
  });
}

/**
 * Reads SSE events into `into` until the stream ends. Resolves with how it ended: `end` (the
 * server closed it), `error` (the connection broke, e.g. its node was killed) or `aborted`.
 */
export async function drain(res: Response, into: Timed[], signal?: AbortSignal, onEvent?: (ev: Timed) => void): Promise<'end' | 'error' | 'aborted'> {
  try {
    await readSSE(
      res,
      (ev) => {
        into.push(ev);
        onEvent?.(ev);
      },
      signal,
    );
    return 'end';
  } catch (err) {
    if (signal?.aborted) return 'aborted';
    if (err instanceof Error && /not a contract event|does not match/.test(err.message)) throw err;
    return 'error';
  }
}

/** Polls `cond` until it gives a value (not undefined/false), failing after `ms` with `what` and `context()`. */
export async function until<T>(what: string, ms: number, cond: () => Promise<T | undefined | false> | T | undefined | false, context: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${context()}`);
    await sleep(30);
  }
}

/** A done event's reason as a plain string (`sandbox_lost` may be newer than the protocol types). */
export function reasonOf(e: ExecutionEvent | undefined): string | undefined {
  return e?.type === 'done' ? String(e.reason) : undefined;
}

/** Asserts `events` is the log from seq 1, each seq once, in order, ending with exactly one `done`. */
export function assertWholeLog(events: readonly ExecutionEvent[], what: string): void {
  const seqs = events.map((e) => e.seq);
  seqs.forEach((s, i) => assert.equal(s, i + 1, `${what}: seq ${s} at position ${i + 1} (seqs ${seqs.join(',')})`));
  const dones = events.filter((e) => e.type === 'done');
  assert.equal(dones.length, 1, `${what}: ${dones.length} done events`);
  assert.equal(events.at(-1)?.type, 'done', `${what}: done is not last`);
}

/** A Python program printing `line 0` … `line n-1`, one every `interval` seconds; its whole stdout. */
export function numberedLines(n: number, interval: number): { code: string; stdout: string } {
  return {
    code: `import time\nfor i in range(${n}):\n    print(f"line {i}", flush=True)\n    time.sleep(${interval})\n`,
    stdout: Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''),
  };
}

/** Concatenated stdout of some events. */
export function stdoutOf(events: readonly ExecutionEvent[]): string {
  let s = '';
  for (const e of events) if (e.type === 'stdout') s += e.content;
  return s;
}
