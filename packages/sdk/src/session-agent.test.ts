// session.agent against a real HTTP server on loopback that speaks the agent endpoints with a
// scripted log: the camelCase events, resume with Last-Event-ID (each event once), cancel by
// cancel()/break/signal seen by the server, the typed errors, and the option checks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeEventSSE, encodeSSEComment, type AgentEvent } from '@sluice/protocol';
import { Sluice } from './client.js';
import { ConnectionError, LLMUnavailableError, SessionBusyError } from './errors.js';
import type { AgentStreamEvent } from './agent-events.js';

const RUN = 'run-1';
const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

/** An event without its envelope. */
type Bare<E = AgentEvent> = E extends AgentEvent ? Omit<E, 'seq' | 'ts'> : never;

/** A realistic log: one turn that runs code, a second that answers. */
function script(): AgentEvent[] {
  const events: Bare[] = [
    { type: 'agent_start', run_id: RUN, session_id: 's1', model: 'scripted' },
    { type: 'turn_start', turn: 1 },
    { type: 'text_delta', text: 'Let me compute. ' },
    { type: 'tool_input_delta', tool_id: 't1', tool_name: 'run_code', text: '{"code":"print(' },
    { type: 'tool_input_delta', tool_id: 't1', tool_name: 'run_code', text: '6*7)"}' },
    { type: 'tool_start', tool_id: 't1', tool_name: 'run_code', input: { code: 'print(6*7)' } },
    { type: 'tool_output_delta', tool_id: 't1', tool_name: 'run_code', stream: 'stdout', text: '42\n', execution_id: 'e1' },
    { type: 'tool_end', tool_id: 't1', tool_name: 'run_code', tool_output: '42\n', exit_code: 0, reason: 'exited', execution_id: 'e1' },
    { type: 'turn_end', turn: 1, usage, total_tokens: 15 },
    { type: 'turn_start', turn: 2 },
    { type: 'text_delta', text: 'The answer ' },
    { type: 'text_delta', text: 'is 42.' },
    { type: 'turn_end', turn: 2, usage, total_tokens: 30 },
    { type: 'end', text: 'The answer is 42.', total_tokens: 30, usage: { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 }, turns: 2, reason: 'completed' },
  ];
  return events.map((e, i) => ({ ...e, seq: i + 1, ts: 1000 + i }) as AgentEvent);
}

function frame(ev: AgentEvent): string {
  return encodeEventSSE(ev.seq, ev.type, JSON.stringify(ev));
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: Seen, res: ServerResponse) => void;

let server: Server;
let baseURL = '';
let handler: Handler = (_req, res) => res.writeHead(500).end();
let seen: Seen[] = [];
/** Responses still open (a live stream waiting for its cancel), ended in `after`. */
const open = new Set<ServerResponse>();

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      open.add(res);
      res.on('close', () => open.delete(res));
      handler(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const res of open) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function client(): Sluice {
  seen = [];
  return new Sluice({ baseURL, reconnect: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 }, heartbeatTimeoutMs: 5000 });
}

function startSSE(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'sluice-agent-run-id': RUN,
    location: `/api/agent-runs/${RUN}`,
  });
  res.write(encodeSSEComment('connected'));
}

/** Polls `cond` until it holds, failing after `ms`. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function isCancel(s: Seen): boolean {
  return s.method === 'POST' && s.url === `/api/agent-runs/${RUN}/cancel`;
}

/** Answers a cancel (202) and ends the live stream `live` with a cancelled `end`. */
function answerCancel(res: ServerResponse, live: ServerResponse | undefined, nextSeq: number): void {
  res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ run_id: RUN, state: 'running', cancelled: true }));
  if (live === undefined || live.writableEnded) return;
  const end: AgentEvent = { type: 'end', seq: nextSeq, ts: 1, text: 'partial', total_tokens: 3, usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 }, turns: 1, reason: 'cancelled' };
  live.end(frame(end));
}

test('stream() posts the options in wire names and yields every event in camelCase, folding the result', async () => {
  const log = script();
  handler = (_req, res) => {
    startSSE(res);
    res.end(log.map(frame).join(''));
  };
  const sluice = client();
  const stream = sluice.session('s1').agent.stream('What is 6*7?', { maxTurns: 3, tools: ['run_code'], system: 'be brief', model: 'scripted', language: 'python', timeout: 30 });
  const seenEvents: AgentStreamEvent[] = [];
  for await (const ev of stream) seenEvents.push(ev);
  assert.deepEqual(
    seenEvents.map((e) => e.seq),
    log.map((e) => e.seq),
  );
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.method, 'POST');
  assert.equal(seen[0]?.url, '/api/sessions/s1/agent');
  assert.equal(seen[0]?.headers['accept'], 'text/event-stream');
  assert.ok(seen[0]?.headers['idempotency-key']);
  assert.deepEqual(JSON.parse(seen[0]?.body ?? ''), { prompt: 'What is 6*7?', system: 'be brief', model: 'scripted', max_turns: 3, tools: ['run_code'], language: 'python', timeout: 30 });
  assert.equal(await stream.runId, RUN);
  const toolEnd = seenEvents.find((e) => e.type === 'tool_end');
  assert.deepEqual(toolEnd, { type: 'tool_end', seq: 8, ts: 1007, toolId: 't1', toolName: 'run_code', toolOutput: '42\n', exitCode: 0, reason: 'exited', executionId: 'e1' });
  const out = seenEvents.find((e) => e.type === 'tool_output_delta');
  assert.equal(out?.type === 'tool_output_delta' && `${out.toolName}:${out.stream}:${out.text}:${out.executionId}`, 'run_code:stdout:42\n:e1');
  const turnEnd = seenEvents.find((e) => e.type === 'turn_end');
  assert.deepEqual(turnEnd?.type === 'turn_end' && [turnEnd.turn, turnEnd.totalTokens, turnEnd.usage.promptTokens], [1, 15, 10]);
  const end = seenEvents.at(-1);
  assert.ok(end?.type === 'end');
  assert.equal(end.text, 'The answer is 42.');
  assert.equal(end.totalTokens, 30);
  const result = await stream.result();
  assert.equal(result.runId, RUN);
  assert.equal(result.text, 'The answer is 42.');
  assert.equal(result.reason, 'completed');
  assert.equal(result.completed, true);
  assert.equal(result.turns, 2);
  assert.equal(result.totalTokens, 30);
  assert.deepEqual(result.toolCalls, [{ toolId: 't1', toolName: 'run_code', input: { code: 'print(6*7)' }, toolOutput: '42\n', exitCode: 0, reason: 'exited', executionId: 'e1', results: [] }]);
  assert.equal(stream.finalText, 'The answer is 42.');
});

test('awaiting stream() yields the stream itself (A3S writes `const stream = await session.stream(…)`)', async () => {
  handler = (_req, res) => {
    startSSE(res);
    res.end(script().map(frame).join(''));
  };
  const agent = client().session('s1').agent;
  const direct = agent.stream('hi');
  assert.equal('then' in direct, false, 'not a thenable');
  const awaited = await direct;
  assert.equal(awaited, direct);
  const texts: string[] = [];
  for await (const ev of await agent.stream('again')) if (ev.type === 'text_delta') texts.push(ev.text);
  assert.deepEqual(texts, ['Let me compute. ', 'The answer ', 'is 42.']);
  await direct.result();
});

test('a stream dropped mid-run resumes from GET /api/agent-runs/{id}/events with Last-Event-ID, every event exactly once', async () => {
  const log = script();
  const resumes: string[] = [];
  handler = (req, res) => {
    if (req.method === 'POST') {
      startSSE(res);
      res.write(log.slice(0, 5).map(frame).join(''));
      // Cut the connection mid-frame, before `end`.
      res.write(frame(log[5] as AgentEvent).slice(0, 20), () => res.destroy());
      return;
    }
    const last = String(req.headers['last-event-id'] ?? '');
    resumes.push(`${req.url} ${last}`);
    startSSE(res);
    const from = Number(last);
    if (resumes.length === 1) {
      // Replays an overlap (seq 4..9), then drops again.
      res.write(log.slice(from - 2, 9).map(frame).join(''), () => res.destroy());
      return;
    }
    res.end(log.slice(from).map(frame).join(''));
  };
  const stream = client().session('s1').agent.stream('What is 6*7?');
  const seqs: number[] = [];
  for await (const ev of stream) seqs.push(ev.seq);
  assert.deepEqual(seqs, log.map((e) => e.seq));
  assert.deepEqual(resumes, [`/api/agent-runs/${RUN}/events 5`, `/api/agent-runs/${RUN}/events 9`]);
  assert.equal((await stream.result()).text, 'The answer is 42.');
});

test('stream.cancel() posts the cancel, and the loop reads on to the cancelled end', async () => {
  const log = script();
  let live: ServerResponse | undefined;
  handler = (req, res) => {
    if (isCancel(req)) return answerCancel(res, live, 4);
    live = res;
    startSSE(res);
    res.write(log.slice(0, 3).map(frame).join(''));
  };
  const stream = client().session('s1').agent.stream('long');
  const types: string[] = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'text_delta') await stream.cancel();
  }
  assert.deepEqual(types, ['agent_start', 'turn_start', 'text_delta', 'end']);
  assert.equal(seen.filter(isCancel).length, 1);
  const r = await stream.result();
  assert.equal(r.reason, 'cancelled');
  assert.equal(r.cancelled, true);
  assert.equal(r.text, 'partial');
});

test('break out of the loop cancels the run on the server', async () => {
  const log = script();
  handler = (req, res) => {
    if (isCancel(req)) return answerCancel(res, undefined, 0);
    startSSE(res);
    res.write(log.slice(0, 3).map(frame).join(''));
  };
  const sluice = client();
  for await (const ev of sluice.session('s1').agent.stream('long')) {
    if (ev.type === 'text_delta') break;
  }
  await until(() => seen.some(isCancel), 'the cancel');
  assert.equal(seen.filter(isCancel).length, 1);
});

test('break with cancelOnLeave: false leaves the run going', async () => {
  handler = (_req, res) => {
    startSSE(res);
    res.write(script().slice(0, 3).map(frame).join(''));
  };
  for await (const ev of client().session('s1').agent.stream('long', { cancelOnLeave: false })) {
    if (ev.type === 'text_delta') break;
  }
  assert.equal(seen.filter(isCancel).length, 0);
});

test('aborting the signal cancels the run on the server and rejects the loop with the reason', async () => {
  handler = (req, res) => {
    if (isCancel(req)) return answerCancel(res, undefined, 0);
    startSSE(res);
    res.write(script().slice(0, 3).map(frame).join(''));
  };
  const ac = new AbortController();
  const reason = new Error('user left');
  const stream = client().session('s1').agent.stream('long', { signal: ac.signal });
  await assert.rejects(
    (async () => {
      // Aborted while the next read is pending (the server has nothing more to send).
      for await (const ev of stream) if (ev.type === 'text_delta') setImmediate(() => ac.abort(reason));
    })(),
    (err: unknown) => err === reason,
  );
  await until(() => seen.some(isCancel), 'the cancel');
  await assert.rejects(stream.result(), (err: unknown) => err === reason);
});

test('409 is SessionBusyError and 502 LLM_UNAVAILABLE is LLMUnavailableError, neither retried', async () => {
  const cases = [
    { status: 409, code: 'SESSION_BUSY', cls: SessionBusyError },
    { status: 502, code: 'LLM_UNAVAILABLE', cls: LLMUnavailableError },
  ] as const;
  for (const c of cases) {
    handler = (_req, res) => res.writeHead(c.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: c.code, message: `said ${c.code}` } }));
    const stream = client().session('s1').agent.stream('hi');
    await assert.rejects(
      (async () => {
        for await (const _ev of stream);
      })(),
      (err: unknown) => err instanceof c.cls && err.message === `said ${c.code}` && err.status === c.status,
    );
    await assert.rejects(stream.runId, c.cls);
    assert.equal(seen.length, 1, `${c.code}: one request`);
  }
});

test('a stream that keeps failing gives up with a ConnectionError after reconnect.maxAttempts', async () => {
  handler = (req, res) => {
    startSSE(res);
    if (req.method === 'POST') res.write(frame(script()[0] as AgentEvent));
    res.end();
  };
  await assert.rejects(client().session('s1').agent.run('hi'), (err: unknown) => err instanceof ConnectionError && /agent run run-1 after 3|reconnect\.maxAttempts/.test(err.message));
  assert.equal(seen.length, 4, 'the start and three resumes');
});

test('options are checked where they enter, naming the option', () => {
  const agent = new Sluice({ baseURL: 'http://127.0.0.1:9' }).session('s1').agent;
  assert.throws(() => agent.stream(''), /^TypeError: prompt: expected a non-empty string/);
  assert.throws(() => agent.stream('x', { maxTurns: 0 }), /^TypeError: maxTurns: expected/);
  assert.throws(() => agent.stream('x', { tools: ['run_code', 'rm_rf' as 'run_code'] }), /^TypeError: tools\[1\]: .*"run_code", "read_file", "write_file", "list_files", got "rm_rf"/);
  assert.throws(() => agent.stream('x', { timeout: -1 }), /^TypeError: timeout: expected/);
  assert.throws(() => agent.attach('r', { from: 0 }), /^TypeError: from: expected/);
});

test('attach() follows a run from `from`, get() reads its view, reset() forgets the conversation', async () => {
  const log = script();
  handler = (req, res) => {
    if (req.method === 'GET' && req.url === `/api/agent-runs/${RUN}/events`) {
      startSSE(res);
      return void res.end(log.slice(Number(req.headers['last-event-id'] ?? 0)).map(frame).join(''));
    }
    if (req.method === 'GET' && req.url === `/api/agent-runs/${RUN}`) {
      const view = {
        run_id: RUN,
        session_id: 's1',
        state: 'finished',
        model: 'scripted',
        max_turns: 10,
        tools: ['run_code', 'read_file'],
        last_seq: 14,
        created_at: '2026-01-01T00:00:00.000Z',
        finished_at: '2026-01-01T00:00:01.000Z',
        text: 'The answer is 42.',
        reason: 'completed',
        turns: 2,
        total_tokens: 30,
        tool_calls: [],
        usage: { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 },
        error: null,
        gap: false,
      };
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view));
    }
    if (req.method === 'DELETE' && req.url === '/api/sessions/s1/agent') return void res.writeHead(204).end();
    res.writeHead(404).end();
  };
  const agent = client().session('s1').agent;
  const seqs: number[] = [];
  for await (const ev of agent.attach(RUN, { from: 12 })) seqs.push(ev.seq);
  assert.deepEqual(seqs, [12, 13, 14]);
  assert.equal(seen[0]?.headers['last-event-id'], '11');
  const info = await agent.get(RUN);
  assert.equal(info.state, 'finished');
  assert.equal(info.maxTurns, 10);
  assert.equal(info.totalTokens, 30);
  assert.equal(info.usage.completionTokens, 10);
  assert.deepEqual(info.tools, ['run_code', 'read_file']);
  await agent.reset();
  assert.equal(seen.at(-1)?.method, 'DELETE');
});
