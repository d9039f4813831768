/**
 * A scripted OpenAI-compatible chat-completions endpoint on loopback, for agent tests. Each
 * POST to `/v1/chat/completions` takes the next reply of the script and streams it in OpenAI's
 * chunk format byte for byte (the `chat.completion.chunk` objects, `"usage":null` on every
 * chunk, a usage-only chunk before `data: [DONE]`), or misbehaves as the reply says (a status
 * with `Retry-After`, a connection cut mid-stream, a stall). Every request is recorded (its
 * headers and parsed body) so a test can check what the model was sent.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenLoopback } from './net.js';

/** One step of a streamed reply. */
export type ReplyStep =
  /** Text content (one chunk). */
  | { text: string }
  /** The first fragment of a tool call: its id and name, empty arguments (as OpenAI sends it). */
  | { toolCall: { index?: number; id?: string; name: string } }
  /** More of a tool call's arguments (`index` omitted: the quirk of some providers). */
  | { args: string; index?: number; id?: string }
  /** The finish chunk. */
  | { finish: 'stop' | 'tool_calls' | 'length' | 'content_filter' }
  /** The usage-only chunk (`choices: []`). */
  | { usage: { prompt: number; completion: number } }
  /** Raw bytes, written as they are (to cut frames anywhere). */
  | { raw: string }
  /** Waits until the test calls `release(name)` (or the client goes away). */
  | { hold: string }
  /** Cuts the connection (a 500 mid-stream: the body breaks off). */
  | 'cut'
  /** Sends nothing more and never ends (until the client goes away). */
  | 'stall';

/** One reply: a stream of steps (status 200, then `data: [DONE]` unless it was cut or stalled), or an error status. */
export type Reply = { steps: ReplyStep[]; done?: boolean } | { status: number; retryAfter?: number; body?: string };

/** One request the endpoint received. */
export interface RecordedRequest {
  headers: IncomingMessage['headers'];
  body: ChatRequestBody;
  /** When its response ended, or null while it streams. */
  endedAt: number | null;
  /** True when the client closed the connection before the reply ended. */
  aborted: boolean;
}

/** The parts of a chat-completions request the tests look at. */
export interface ChatRequestBody {
  model: string;
  stream: boolean;
  stream_options?: { include_usage?: boolean };
  messages: Array<{ role: string; content: string | null; tool_call_id?: string; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> }>;
  tools?: Array<{ type: string; function: { name: string } }>;
}

export interface ScriptedLLM {
  /** The base URL to configure (`…/v1`). */
  baseURL: string;
  requests: RecordedRequest[];
  /** Appends replies to the script. */
  push(...replies: Reply[]): void;
  /** Lets a reply waiting at `{ hold: name }` go on. */
  release(name: string): void;
  /** Resolves when a reply reaches `{ hold: name }`. */
  reached(name: string): Promise<void>;
  /** Replies not used yet. */
  pending(): number;
  close(): Promise<void>;
}

const CREATED = 1733321482;

/** The chunk JSON OpenAI sends, with one choice (or none, for the usage chunk). */
function chunk(id: string, model: string, delta: string | null, finish = 'null', usage = 'null'): string {
  const choices = delta === null ? '' : `{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}`;
  return (
    `data: {"id":"${id}","object":"chat.completion.chunk","created":${CREATED},"model":"${model}",` +
    `"service_tier":"default","system_fingerprint":"fp_0705bf87c0","choices":[${choices}],"usage":${usage}}\n\n`
  );
}

/** The bytes of one step (or null for the steps that are behaviours). */
function render(step: ReplyStep, id: string, model: string, first: boolean): string | null {
  if (typeof step === 'string') return null;
  if ('hold' in step) return null;
  if ('raw' in step) return step.raw;
  if ('text' in step) return chunk(id, model, `{${first ? '"role":"assistant",' : ''}"content":${JSON.stringify(step.text)}}`);
  if ('toolCall' in step) {
    const c = step.toolCall;
    const fields = [
      ...(c.index === undefined ? [] : [`"index":${c.index}`]),
      ...(c.id === undefined ? [] : [`"id":${JSON.stringify(c.id)}`]),
      `"type":"function","function":{"name":${JSON.stringify(c.name)},"arguments":""}`,
    ];
    return chunk(id, model, `{${first ? '"role":"assistant","content":null,' : ''}"tool_calls":[{${fields.join(',')}}],"refusal":null}`);
  }
  if ('args' in step) {
    const fields = [
      ...(step.index === undefined ? [] : [`"index":${step.index}`]),
      ...(step.id === undefined ? [] : [`"id":${JSON.stringify(step.id)}`]),
      `"function":{"arguments":${JSON.stringify(step.args)}}`,
    ];
    return chunk(id, model, `{"tool_calls":[{${fields.join(',')}}]}`);
  }
  if ('finish' in step) return chunk(id, model, '{}', JSON.stringify(step.finish));
  const u = step.usage;
  const usage =
    `{"prompt_tokens":${u.prompt},"completion_tokens":${u.completion},"total_tokens":${u.prompt + u.completion},` +
    `"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`;
  return chunk(id, model, null, 'null', usage);
}

export async function startScriptedLLM(): Promise<ScriptedLLM> {
  const script: Reply[] = [];
  const requests: RecordedRequest[] = [];
  const holds = new Map<string, { released: boolean; release: () => void; waiters: Array<() => void>; reachedWaiters: Array<() => void>; reached: boolean }>();
  const sockets = new Set<Socket>();
  let served = 0;

  const holdOf = (name: string): NonNullable<ReturnType<typeof holds.get>> => {
    let h = holds.get(name);
    if (!h) {
      const entry = {
        released: false,
        reached: false,
        waiters: [] as Array<() => void>,
        reachedWaiters: [] as Array<() => void>,
        release: (): void => {
          entry.released = true;
          for (const w of entry.waiters.splice(0)) w();
        },
      };
      h = entry;
      holds.set(name, h);
    }
    return h;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found","type":"invalid_request_error"}}');
      return;
    }
    let raw = '';
    req.setEncoding('utf8');
    for await (const piece of req) raw += piece as string;
    const body = JSON.parse(raw) as ChatRequestBody;
    const record: RecordedRequest = { headers: req.headers, body, endedAt: null, aborted: false };
    requests.push(record);
    const gone = new Promise<void>((resolve) => res.once('close', () => resolve()));
    res.once('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });
    const reply = script.shift();
    served++;
    if (reply === undefined) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"the scripted model has no reply left","type":"server_error"}}');
      record.endedAt = Date.now();
      return;
    }
    if ('status' in reply) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
      res.writeHead(reply.status, headers).end(reply.body ?? `{"error":{"message":"scripted status ${reply.status}","type":"server_error"}}`);
      record.endedAt = Date.now();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const id = `chatcmpl-scripted${served}`;
    let first = true;
    let flushed: Promise<void> = Promise.resolve();
    for (const step of reply.steps) {
      if (res.destroyed) return;
      if (step === 'cut') {
        // What was written reaches the client first: the break comes after it.
        await flushed;
        req.socket.destroy();
        return;
      }
      if (step === 'stall') {
        await gone;
        return;
      }
      if (typeof step === 'object' && 'hold' in step) {
        const h = holdOf(step.hold);
        h.reached = true;
        for (const w of h.reachedWaiters.splice(0)) w();
        if (!h.released) await Promise.race([new Promise<void>((r) => h.waiters.push(r)), gone]);
        continue;
      }
      const bytes = render(step, id, body.model, first);
      if (bytes !== null) {
        first = false;
        flushed = new Promise((resolve) => res.write(bytes, () => resolve()));
      }
    }
    if (reply.done !== false) res.write('data: [DONE]\n\n');
    res.end();
    record.endedAt = Date.now();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const listening = await listenLoopback(server, sockets);
  return {
    baseURL: `${listening.url}/v1`,
    requests,
    push: (...replies) => void script.push(...replies),
    release: (name) => holdOf(name).release(),
    reached: (name) => {
      const h = holdOf(name);
      if (h.reached) return Promise.resolve();
      return new Promise((r) => h.reachedWaiters.push(r));
    },
    pending: () => script.length,
    close: () => {
      for (const h of holds.values()) h.release();
      return listening.close();
    },
  };
}

/** A reply that says `text` and stops, with usage. */
export function textReply(text: string, usage = { prompt: 20, completion: 5 }): Reply {
  return { steps: [{ text }, { finish: 'stop' }, { usage }] };
}

/**
 * A reply that calls one tool, its arguments streamed in pieces of `pieceSize` characters
 * (so they split JSON tokens), optionally after some text.
 */
export function toolCallReply(name: string, args: Record<string, unknown>, opts: { id?: string; text?: string; pieceSize?: number; usage?: { prompt: number; completion: number } } = {}): Reply {
  const json = JSON.stringify(args);
  const size = opts.pieceSize ?? 7;
  const steps: ReplyStep[] = [];
  if (opts.text !== undefined) steps.push({ text: opts.text });
  steps.push({ toolCall: { index: 0, id: opts.id ?? `call_${name}_${Math.random().toString(36).slice(2, 10)}`, name } });
  for (let i = 0; i < json.length; i += size) steps.push({ args: json.slice(i, i + size), index: 0 });
  steps.push({ finish: 'tool_calls' }, { usage: opts.usage ?? { prompt: 30, completion: 10 } });
  return { steps };
}

/** Asserts every scripted reply was used. */
export function assertScriptUsed(llm: ScriptedLLM): void {
  assert.equal(llm.pending(), 0, 'the scripted model still has replies: the agent made fewer model calls than expected');
}
