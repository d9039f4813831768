import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatDelta } from './chat-delta.js';
import { streamChat, type StreamChatOptions } from './chat-stream.js';
import { LLMError } from './llm-error.js';
import { ToolCallAccumulator } from './tool-call-accumulator.js';

// ---- OpenAI's streaming format, byte for byte -------------------------------------------------

const HEAD =
  '"id":"chatcmpl-AaH3yQ8LvZ2kWbQe1u9n0pXcJmT5r","object":"chat.completion.chunk","created":1733321482,' +
  '"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0705bf87c0"';
const USAGE =
  '{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},' +
  '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}';

/** One `data:` frame with one choice (or none), `"usage":null` as OpenAI sends with include_usage. */
function frame(delta: string | null, finish = 'null', usage = 'null'): string {
  const choices = delta === null ? '' : `{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}`;
  return `data: {${HEAD},"choices":[${choices}],"usage":${usage}}\n\n`;
}
const ROLE = frame('{"role":"assistant","content":"","refusal":null}');
const text = (t: string): string => frame(`{"content":${JSON.stringify(t)}}`);
const finish = (reason: string): string => frame('{}', JSON.stringify(reason));
const USAGE_ONLY = frame(null, 'null', USAGE);
const DONE = 'data: [DONE]\n\n';
const firstToolFragment = (index: number, id: string, name: string): string =>
  frame(
    `{${index === 0 ? '"role":"assistant","content":null,' : ''}"tool_calls":[{"index":${index},"id":"${id}","type":"function","function":{"name":"${name}","arguments":""}}],"refusal":null}`,
  );
const argsFragment = (index: number | null, args: string): string =>
  frame(`{"tool_calls":[{${index === null ? '' : `"index":${index},`}"function":{"arguments":${JSON.stringify(args)}}}]}`);

const encoder = new TextEncoder();

/** The whole text as bytes cut every `size` bytes (so cuts fall mid-line, mid-JSON, mid-character). */
function cut(textBody: string, size: number): Uint8Array[] {
  const bytes = encoder.encode(textBody);
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size));
  return out;
}

/** A body step: bytes, a failure of the connection, or silence until cancelled. */
type Step = Uint8Array | string | { error: Error } | 'stall';

interface ScriptedBody {
  body: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
}

function scriptedBody(steps: Step[]): ScriptedBody {
  let next = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller): Promise<void> | undefined {
        const step = steps[next++];
        if (step === undefined) controller.close();
        else if (step === 'stall') return new Promise<void>(() => {});
        else if (typeof step === 'string') controller.enqueue(encoder.encode(step));
        else if (step instanceof Uint8Array) controller.enqueue(step);
        else controller.error(step.error);
        return undefined;
      },
      cancel(): void {
        cancelled = true;
      },
    },
    // Pull only when read: a stall starts when the client waits for bytes, as on a real socket.
    { highWaterMark: 0 },
  );
  return { body, cancelled: () => cancelled };
}

function sse(steps: Step[], init: ResponseInit = {}): { response: Response; cancelled: () => boolean } {
  const b = scriptedBody(steps);
  return { response: new Response(b.body, { status: 200, headers: { 'content-type': 'text/event-stream' }, ...init }), cancelled: b.cancelled };
}

interface FetchCall {
  url: string;
  init: RequestInit;
  at: number;
}

/** A fetch answering each call with the next scripted reply. */
function scriptedFetch(replies: Array<(init: RequestInit) => Response | Promise<Response>>): { fetch: typeof fetch; calls: FetchCall[] } {
  const calls: FetchCall[] = [];
  const f: typeof fetch = async (input, init = {}) => {
    calls.push({ url: input instanceof Request ? input.url : String(input), init, at: Date.now() });
    const reply = replies[calls.length - 1];
    if (reply === undefined) throw new Error(`unexpected fetch #${calls.length}`);
    return reply(init);
  };
  return { fetch: f, calls };
}

const KEY = 'sk-proj-Zx81secretKEYvalue0000';

function options(f: typeof fetch, extra: Partial<StreamChatOptions> = {}): StreamChatOptions {
  return {
    baseURL: 'http://127.0.0.1:9/v1/',
    apiKey: KEY,
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
    fetch: f,
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    ...extra,
  };
}

async function collect(it: AsyncIterable<ChatDelta>): Promise<ChatDelta[]> {
  const out: ChatDelta[] = [];
  for await (const d of it) out.push(d);
  return out;
}

/** Runs the stream to its end or failure, keeping what arrived before a failure. */
async function drain(it: AsyncIterable<ChatDelta>): Promise<{ deltas: ChatDelta[]; error: unknown }> {
  const deltas: ChatDelta[] = [];
  try {
    for await (const d of it) deltas.push(d);
  } catch (error) {
    return { deltas, error };
  }
  return { deltas, error: undefined };
}

function textOf(deltas: ChatDelta[]): string {
  return deltas.map((d) => (d.type === 'text' ? d.text : '')).join('');
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function assertLLMError(err: unknown, code: LLMError['code'], pattern: RegExp): LLMError {
  assert.ok(err instanceof LLMError, `expected an LLMError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, pattern);
  assert.equal(err.message.includes(KEY), false, `the key leaked: ${err.message}`);
  assert.equal(String(err.stack).includes(KEY), false);
  return err;
}

// ---- the happy paths ----------------------------------------------------------------------------

const PLAIN = ROLE + text('H') + text('éllo, 世') + text('界 👋') + finish('stop') + USAGE_ONLY + DONE;

for (const [name, body] of [
  ['LF, cut every 5 bytes', cut(PLAIN, 5)],
  ['CRLF, cut every 3 bytes (between CR and LF too)', cut(PLAIN.replaceAll('\n', '\r\n'), 3)],
  ['LF, one byte per chunk', cut(PLAIN, 1)],
] as const) {
  test(`plain text streams as text deltas, then finish and usage (${name})`, async () => {
    const { fetch, calls } = scriptedFetch([() => sse([...body]).response]);
    const deltas = await collect(streamChat(options(fetch)));
    assert.equal(textOf(deltas), 'Héllo, 世界 👋');
    assert.deepEqual(deltas.slice(-2), [
      { type: 'finish', reason: 'stop', raw: 'stop' },
      { type: 'usage', usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99 } },
    ]);
    assert.equal(calls.length, 1);
  });
}

test('the request is a streaming chat completion with usage, tools, and the key only in Authorization', async () => {
  const { fetch, calls } = scriptedFetch([() => sse([PLAIN]).response, () => sse([PLAIN]).response]);
  const tools = [{ type: 'function' as const, function: { name: 'run_code', description: 'Run code', parameters: { type: 'object', properties: { code: { type: 'string' } } } } }];
  await collect(streamChat(options(fetch, { tools })));
  const call = calls[0];
  assert.ok(call);
  assert.equal(call.url, 'http://127.0.0.1:9/v1/chat/completions');
  assert.equal(call.init.method, 'POST');
  const headers = new Headers(call.init.headers);
  assert.equal(headers.get('authorization'), `Bearer ${KEY}`);
  assert.equal(headers.get('content-type'), 'application/json');
  assert.deepEqual(JSON.parse(String(call.init.body)), {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true },
    tools,
  });
  // No key (a local server): no Authorization header at all; no tools: no `tools` field.
  await collect(streamChat(options(fetch, { apiKey: undefined })));
  assert.equal(new Headers(calls[1]?.init.headers).get('authorization'), null);
  assert.equal('tools' in JSON.parse(String(calls[1]?.init.body)), false);
});

test('two tool calls in one turn, arguments over many chunks, assemble into two parsed calls', async () => {
  const code = 'print("héllo")\nfor i in range(3):\n    print(i)';
  const codeArgs = JSON.stringify({ code, language: 'python' });
  const pathArgs = JSON.stringify({ path: 'data/x "y".txt' });
  let body = firstToolFragment(0, 'call_DdmO9pD3xa9XTPNJ32zg2hcA', 'run_code');
  // Four characters per fragment, as OpenAI streams arguments: escapes are cut in the middle.
  for (let i = 0; i < codeArgs.length; i += 4) body += argsFragment(0, codeArgs.slice(i, i + 4));
  body += firstToolFragment(1, 'call_Ab3xQ9yTzLm8K2vN5pR7sWc1', 'read_file');
  for (let i = 0; i < pathArgs.length; i += 3) body += argsFragment(1, pathArgs.slice(i, i + 3));
  body += finish('tool_calls') + USAGE_ONLY + DONE;
  const { fetch } = scriptedFetch([() => sse(cut(body, 7)).response]);
  const acc = new ToolCallAccumulator();
  const streamed = new Map<string, string>();
  let reason: string | undefined;
  for await (const d of streamChat(options(fetch))) {
    if (d.type === 'tool_call') {
      const u = acc.push(d);
      streamed.set(u.id, (streamed.get(u.id) ?? '') + u.fragment);
    } else if (d.type === 'finish') reason = d.reason;
    else assert.notEqual(d.type, 'text');
  }
  assert.equal(reason, 'tool_calls');
  assert.deepEqual(acc.finish(), [
    { id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'run_code', arguments: codeArgs, parsed: { ok: true, value: { code, language: 'python' } } },
    { id: 'call_Ab3xQ9yTzLm8K2vN5pR7sWc1', name: 'read_file', arguments: pathArgs, parsed: { ok: true, value: { path: 'data/x "y".txt' } } },
  ]);
  assert.deepEqual([...streamed.values()], [codeArgs, pathArgs]);
});

test('provider quirks: a missing index continues the last call, a repeated index with a new id is a new call', async () => {
  const body =
    ROLE +
    // no index at all (as some Ollama and vLLM versions send)
    frame('{"tool_calls":[{"id":"call_a","type":"function","function":{"name":"list_files","arguments":"{\\"di"}}]}') +
    argsFragment(null, 'r": "src"}') +
    // index 0 again, but a new id: a second call
    frame('{"tool_calls":[{"index":0,"id":"call_b","type":"function","function":{"name":"read_file","arguments":""}}]}') +
    argsFragment(0, '{"path"') +
    argsFragment(0, ': "a.txt"}') +
    finish('tool_calls') +
    DONE;
  const { fetch } = scriptedFetch([() => sse(cut(body, 11)).response]);
  const acc = new ToolCallAccumulator();
  for await (const d of streamChat(options(fetch))) if (d.type === 'tool_call') acc.push(d);
  assert.deepEqual(
    acc.finish().map((c) => [c.id, c.name, c.parsed]),
    [
      ['call_a', 'list_files', { ok: true, value: { dir: 'src' } }],
      ['call_b', 'read_file', { ok: true, value: { path: 'a.txt' } }],
    ],
  );
});

test('a usage-only final chunk with empty choices is delivered after the finish', async () => {
  const { fetch } = scriptedFetch([() => sse([ROLE + text('ok') + finish('stop'), USAGE_ONLY, DONE]).response]);
  const deltas = await collect(streamChat(options(fetch)));
  assert.deepEqual(deltas.at(-1), { type: 'usage', usage: { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99 } });
});

test('finish_reason length is reported as length', async () => {
  const { fetch } = scriptedFetch([() => sse([ROLE + text('a long answ') + finish('length') + USAGE_ONLY + DONE]).response]);
  const deltas = await collect(streamChat(options(fetch)));
  assert.deepEqual(
    deltas.filter((d) => d.type === 'finish'),
    [{ type: 'finish', reason: 'length', raw: 'length' }],
  );
});

test('a stream closed after its finish_reason without [DONE] is complete; one closed before it is an error', async () => {
  const ok = scriptedFetch([() => sse([ROLE + text('hi') + finish('stop')]).response]);
  assert.equal(textOf(await collect(streamChat(options(ok.fetch)))), 'hi');
  const cutShort = scriptedFetch([() => sse([ROLE + text('hi')]).response]);
  const r = await drain(streamChat(options(cutShort.fetch)));
  assert.equal(textOf(r.deltas), 'hi');
  assertLLMError(r.error, 'LLM_ERROR', /closed the stream before it finished/);
});

test('a slow consumer is not a stall: the idle timer runs only while waiting for the endpoint', async () => {
  const { fetch } = scriptedFetch([() => sse([ROLE, text('a'), text('b'), finish('stop'), DONE]).response]);
  let seen = '';
  for await (const d of streamChat(options(fetch, { idleTimeoutMs: 40 }))) {
    if (d.type === 'text') seen += d.text;
    // Longer than idleTimeoutMs in the consumer's hands, on purpose.
    await new Promise((r) => setTimeout(r, 120));
  }
  assert.equal(seen, 'ab');
});

// ---- retries and failures -----------------------------------------------------------------------

test('429 then success: waits the Retry-After, then streams once', async () => {
  const { fetch, calls } = scriptedFetch([
    () => new Response('{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}', { status: 429, headers: { 'retry-after': '1' } }),
    () => sse(cut(PLAIN, 9)).response,
  ]);
  const deltas = await collect(streamChat(options(fetch)));
  assert.equal(textOf(deltas), 'Héllo, 世界 👋');
  assert.equal(calls.length, 2);
  const waited = (calls[1]?.at ?? 0) - (calls[0]?.at ?? 0);
  assert.ok(waited >= 990, `retried after ${waited} ms, before the Retry-After of 1 s`);
});

test('5xx on every attempt: LLM_UNAVAILABLE after the bounded attempts, with the status', async () => {
  const reply = (): Response => new Response('upstream exploded', { status: 503, statusText: 'Service Unavailable' });
  const { fetch, calls } = scriptedFetch([reply, reply, reply, reply]);
  const { error } = await drain(streamChat(options(fetch)));
  const err = assertLLMError(error, 'LLM_UNAVAILABLE', /HTTP 503 Service Unavailable: upstream exploded \(after 3 attempts\)/);
  assert.equal(err.status, 503);
  assert.equal(calls.length, 3);
});

test('a 4xx other than 429 is not retried', async () => {
  const { fetch, calls } = scriptedFetch([() => new Response('{"error":{"message":"The model `nope` does not exist"}}', { status: 404 })]);
  const { error } = await drain(streamChat(options(fetch)));
  assertLLMError(error, 'LLM_UNAVAILABLE', /HTTP 404: The model `nope` does not exist$/);
  assert.equal(calls.length, 1);
});

test('a Retry-After beyond the bound is not waited for', async () => {
  const { fetch, calls } = scriptedFetch([() => new Response('slow down', { status: 429, headers: { 'retry-after': '3600' } })]);
  const { error } = await drain(streamChat(options(fetch)));
  assertLLMError(error, 'LLM_UNAVAILABLE', /HTTP 429/);
  assert.equal(calls.length, 1);
});

test('network errors and a stream that breaks before the first delta are retried without repeating anything', async () => {
  const { fetch, calls } = scriptedFetch([
    () => {
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
    },
    // The role-only chunk carries no delta, so a failure after it is still retryable.
    () => sse([ROLE, { error: new Error('other side closed') }]).response,
    () => sse([PLAIN]).response,
  ]);
  const deltas = await collect(streamChat(options(fetch)));
  assert.equal(textOf(deltas), 'Héllo, 世界 👋');
  assert.equal(calls.length, 3);
});

test('a connection lost after the first delta is LLM_ERROR, not retried', async () => {
  const { fetch, calls } = scriptedFetch([() => sse([ROLE + text('Hel'), { error: new Error('socket hang up') }]).response]);
  const { deltas, error } = await drain(streamChat(options(fetch)));
  assert.equal(textOf(deltas), 'Hel');
  assertLLMError(error, 'LLM_ERROR', /the model stream failed: network error: socket hang up/);
  assert.equal(calls.length, 1);
});

test('an in-band error chunk after the first delta (a 500 mid-stream) is LLM_ERROR', async () => {
  const midStream500 = 'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":500}}\n\n';
  const { fetch, calls } = scriptedFetch([() => sse([ROLE + text('Hel') + midStream500]).response]);
  const { deltas, error } = await drain(streamChat(options(fetch)));
  assert.equal(textOf(deltas), 'Hel');
  assertLLMError(error, 'LLM_ERROR', /reported an error: The server had an error/);
  assert.equal(calls.length, 1);
});

test('a stall after the first delta fails with LLM_ERROR saying it stalled, and closes the body', async () => {
  const s = sse([ROLE + text('Hel'), 'stall']);
  const { fetch } = scriptedFetch([() => s.response]);
  const { deltas, error } = await drain(streamChat(options(fetch, { idleTimeoutMs: 100 })));
  assert.equal(textOf(deltas), 'Hel');
  assertLLMError(error, 'LLM_ERROR', /sent nothing for 100 ms \(idleTimeoutMs\); the stream stalled/);
  await until(s.cancelled, 'the body to be cancelled');
});

test('a stall before any byte, or before the headers, is retried and then LLM_UNAVAILABLE', async () => {
  const first = sse(['stall']);
  const aborted: boolean[] = [];
  const { fetch, calls } = scriptedFetch([
    () => first.response,
    (init) =>
      new Promise<Response>((_, reject) => {
        init.signal?.addEventListener('abort', () => {
          aborted.push(true);
          reject(init.signal?.reason);
        });
      }),
  ]);
  const { error } = await drain(streamChat(options(fetch, { idleTimeoutMs: 50, retry: { maxAttempts: 2, baseDelayMs: 1 } })));
  assertLLMError(error, 'LLM_UNAVAILABLE', /stalled \(after 2 attempts\)/);
  assert.equal(calls.length, 2);
  assert.deepEqual(aborted, [true]);
  await until(first.cancelled, 'the stalled body to be cancelled');
});

// ---- abort and break ----------------------------------------------------------------------------

test('aborting while the request is in flight aborts the fetch and rejects with the reason', async () => {
  let fetchSignal: AbortSignal | undefined;
  const { fetch } = scriptedFetch([
    (init) =>
      new Promise<Response>((_, reject) => {
        fetchSignal = init.signal ?? undefined;
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      }),
  ]);
  const ctl = new AbortController();
  const reason = new Error('cancelled by the user');
  const run = drain(streamChat(options(fetch), ctl.signal));
  await until(() => fetchSignal !== undefined, 'the fetch to start');
  ctl.abort(reason);
  const { error } = await run;
  assert.equal(error, reason);
  assert.equal(fetchSignal?.aborted, true);
});

test('aborting mid-stream rejects with the reason and cancels the body', async () => {
  const s = sse([ROLE + text('Hel'), 'stall']);
  const { fetch } = scriptedFetch([() => s.response]);
  const ctl = new AbortController();
  const it = streamChat(options(fetch), ctl.signal);
  const first = await it.next();
  assert.deepEqual(first.value, { type: 'text', text: 'Hel' });
  const pending = it.next();
  ctl.abort(new Error('stop'));
  await assert.rejects(pending, /stop/);
  await until(s.cancelled, 'the body to be cancelled');
});

test('aborting during a retry wait stops at once', async () => {
  const { fetch, calls } = scriptedFetch([() => new Response('busy', { status: 429, headers: { 'retry-after': '30' } })]);
  const ctl = new AbortController();
  const started = Date.now();
  const run = drain(streamChat(options(fetch), ctl.signal));
  await until(() => calls.length === 1, 'the first attempt');
  ctl.abort(new Error('gave up'));
  const { error } = await run;
  assert.match(String(error), /gave up/);
  assert.ok(Date.now() - started < 10_000);
  assert.equal(calls.length, 1);
});

test('break out of the loop cancels the body', async () => {
  const s = sse([ROLE + text('a'), text('b'), 'stall']);
  const { fetch } = scriptedFetch([() => s.response]);
  for await (const d of streamChat(options(fetch))) {
    assert.equal(d.type, 'text');
    break;
  }
  await until(s.cancelled, 'the body to be cancelled');
});

// ---- the key ------------------------------------------------------------------------------------

test('the API key never appears in an error, whatever echoes it', async () => {
  const echo401 = `{"error":{"message":"Incorrect API key provided: ${KEY}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`;
  const cases: Array<[string, (init: RequestInit) => Response | Promise<Response>, LLMError['code'], RegExp]> = [
    ['a 401 body', () => new Response(echo401, { status: 401 }), 'LLM_UNAVAILABLE', /HTTP 401: Incorrect API key provided: \[REDACTED\]\./],
    ['a 500 page', () => new Response(`<pre>Authorization: Bearer ${KEY}</pre>`, { status: 500 }), 'LLM_UNAVAILABLE', /Bearer \[REDACTED\]/],
    [
      'a network error',
      () => {
        throw new TypeError('fetch failed', { cause: new Error(`bad header Bearer ${KEY}`) });
      },
      'LLM_UNAVAILABLE',
      /\[REDACTED\]/,
    ],
    ['an in-band error', () => sse([ROLE + text('x') + `data: {"error":{"message":"key ${KEY} revoked"}}\n\n`]).response, 'LLM_ERROR', /key \[REDACTED\] revoked/],
    ['a malformed chunk', () => sse([`data: {"oops": "${KEY}"\n\n`]).response, 'LLM_UNAVAILABLE', /not JSON: .*\[REDACTED\]/],
  ];
  for (const [name, reply, code, pattern] of cases) {
    const { fetch } = scriptedFetch([reply, reply, reply]);
    const { error } = await drain(streamChat(options(fetch)));
    assertLLMError(error, code, pattern);
    assert.equal(JSON.stringify(error).includes(KEY), false, name);
  }
});

test('a baseURL that is not http(s) is LLM_UNAVAILABLE (not configured), and the fetch is never called', async () => {
  const { fetch, calls } = scriptedFetch([]);
  const { error } = await drain(streamChat(options(fetch, { baseURL: 'ftp://x' })));
  assertLLMError(error, 'LLM_UNAVAILABLE', /not configured: baseURL must be an http\(s\) URL/);
  const empty = await drain(streamChat(options(fetch, { baseURL: '' })));
  assertLLMError(empty.error, 'LLM_UNAVAILABLE', /not configured/);
  assert.equal(calls.length, 0);
});
