/**
 * `session.agent`: agent runs in one session (DESIGN "Agent runs", docs/agents.md). The server
 * calls a model that writes and runs code in the session; `stream()` follows it live as typed
 * events, `run()` waits for its fold. The session keeps the conversation, so the next prompt
 * continues it; `reset()` forgets it. Agent streams travel over SSE.
 */
import { parseAgentRequest, type AgentRequest, type AgentTool } from '@sluice/protocol';
import type { AgentResult } from './agent-result.js';
import { AgentStream, type AgentStreamCallbacks } from './agent-stream.js';
import { reconnectPolicy, type ReconnectOptions, type ReconnectPolicy } from './internal/backoff.js';
import type { ClientContext } from './internal/client-context.js';
import { randomID } from './internal/random-id.js';
import { abortedAgentSource, SSEAgentSource, type AgentStart } from './internal/sse-agent-source.js';
import { readAgentRunInfo, type AgentRunInfo } from './views.js';

/** Options of one agent run (`stream()` and `run()`). */
export interface AgentRunOptions extends AgentStreamCallbacks {
  /** Replaces the server's system prompt (a new conversation's only). */
  system?: string | undefined;
  /** One of the server's allowed models (`SLUICE_LLM_MODELS`); default the server's. */
  model?: string | undefined;
  /** Model calls at most (default 10; the server caps it). */
  maxTurns?: number | undefined;
  /** The tools the model may call (default all: `run_code`, `read_file`, `write_file`, `list_files`). */
  tools?: readonly AgentTool[] | undefined;
  /** Language of `run_code` when the model names none (default: the session's). */
  language?: string | undefined;
  /** Seconds each `run_code` may take (capped by the server). */
  timeout?: number | undefined;
  /** Seconds between the server's `: ping` comments (default 15). */
  heartbeat?: number | undefined;
  /** Aborting cancels the run on the server and rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Leaving the loop early (`break`, abort) cancels the run (default true). With false it goes on; follow it again with `attach(runId, { from })`. */
  cancelOnLeave?: boolean | undefined;
  /** This call's reconnection policy (default: the client's). */
  reconnect?: ReconnectOptions | undefined;
  /** The start's `Idempotency-Key` (default: random per call). Reuse one to make a retried call return the same run. */
  idempotencyKey?: string | undefined;
}

/** Options of following an existing agent run. */
export interface AgentAttachOptions extends AgentStreamCallbacks {
  /** First seq wanted (inclusive), default 1 (the whole log). */
  from?: number | undefined;
  /** Leaving the loop early cancels the run (default false: a reader that attaches only watches). */
  cancelOnLeave?: boolean | undefined;
  signal?: AbortSignal | undefined;
  reconnect?: ReconnectOptions | undefined;
}

/** Each option's wire name, so a refused value is reported under the name the caller wrote. */
const OPTION_NAMES: Record<Exclude<keyof AgentRequest, 'prompt' | 'on_disconnect'>, string> = {
  system: 'system',
  model: 'model',
  max_turns: 'maxTurns',
  tools: 'tools',
  language: 'language',
  timeout: 'timeout',
  heartbeat: 'heartbeat',
};

/** Agent runs in one session: `stream()`, `run()`, `attach()`, `get()`, `reset()`. */
export class SessionAgent {
  /** @internal Use `session.agent`. */
  constructor(
    private readonly ctx: ClientContext,
    private readonly sessionID: string,
  ) {}

  /**
   * Starts an agent run and streams its events as they happen (see {@link AgentStream}):
   * `for await (const ev of session.agent.stream(prompt))`. Awaiting the call first, as A3S
   * code does, gives the same stream.
   */
  stream(prompt: string, opts: AgentRunOptions = {}): AgentStream {
    const body = agentBody(prompt, opts);
    if (opts.signal?.aborted) return new AgentStream(abortedAgentSource(opts.signal.reason), { ...opts, commandTimeoutMs: this.ctx.commandTimeoutMs });
    const start: AgentStart = { kind: 'run', sessionID: this.sessionID, body, idempotencyKey: opts.idempotencyKey ?? randomID() };
    const source = new SSEAgentSource(this.ctx.http, start, this.sourceOptions(reconnectPolicy(opts.reconnect, this.ctx.reconnect)));
    return new AgentStream(source, { ...opts, commandTimeoutMs: this.ctx.commandTimeoutMs });
  }

  /** Runs the agent and resolves with its fold once it ended; a cancelled, failed or cut-short run is a result (`reason`), not an exception. */
  run(prompt: string, opts: AgentRunOptions = {}): Promise<AgentResult> {
    return this.stream(prompt, opts).result();
  }

  /** Follows an agent run (one started elsewhere, or one to resume) from `from`, then live until `end`. */
  attach(runId: string, opts: AgentAttachOptions = {}): AgentStream {
    checkRunID(runId);
    const from = opts.from ?? 1;
    if (!Number.isSafeInteger(from) || from < 1) throw new TypeError(`from: expected the first seq wanted, an integer >= 1, got ${JSON.stringify(from)}`);
    const source = new SSEAgentSource(this.ctx.http, { kind: 'attach', runID: runId, from }, this.sourceOptions(reconnectPolicy(opts.reconnect, this.ctx.reconnect)));
    return new AgentStream(source, { cancelOnLeave: false, ...opts, commandTimeoutMs: this.ctx.commandTimeoutMs });
  }

  /** A run's state and the fold of its log so far (`GET /api/agent-runs/{id}`). */
  async get(runId: string, opts: { signal?: AbortSignal } = {}): Promise<AgentRunInfo> {
    checkRunID(runId);
    return readAgentRunInfo(await this.ctx.http.json('GET', `/api/agent-runs/${encodeURIComponent(runId)}`, { signal: opts.signal }));
  }

  /** Forgets the session's conversation, so the next prompt starts a new one (files and kernels stay). */
  async reset(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const res = await this.ctx.http.request('DELETE', `/api/sessions/${encodeURIComponent(this.sessionID)}/agent`, { signal: opts.signal });
    await res.body?.cancel();
  }

  private sourceOptions(reconnect: ReconnectPolicy): ConstructorParameters<typeof SSEAgentSource>[2] {
    return { reconnect, heartbeatTimeoutMs: this.ctx.heartbeatTimeoutMs, commandTimeoutMs: this.ctx.commandTimeoutMs };
  }
}

/** The wire body of a run, checked by the protocol's own validator; a refusal names the option. */
function agentBody(prompt: string, opts: AgentRunOptions): AgentRequest {
  if (typeof prompt !== 'string' || prompt === '') throw new TypeError(`prompt: expected a non-empty string, got ${JSON.stringify(prompt) ?? typeof prompt}`);
  const body: Record<string, unknown> = { prompt };
  if (opts.system !== undefined) body['system'] = opts.system;
  if (opts.model !== undefined) body['model'] = opts.model;
  if (opts.maxTurns !== undefined) body['max_turns'] = opts.maxTurns;
  if (opts.tools !== undefined) body['tools'] = opts.tools;
  if (opts.language !== undefined) body['language'] = opts.language;
  if (opts.timeout !== undefined) body['timeout'] = opts.timeout;
  if (opts.heartbeat !== undefined) body['heartbeat'] = opts.heartbeat;
  const checked = parseAgentRequest(body);
  if (!checked.ok) {
    let message = checked.message;
    for (const [wire, option] of Object.entries(OPTION_NAMES)) message = message.replace(new RegExp(`^${wire}\\b`), option);
    throw new TypeError(message);
  }
  return checked.value;
}

function checkRunID(id: unknown): void {
  if (typeof id !== 'string' || id === '') throw new TypeError(`run id: expected a non-empty string, got ${JSON.stringify(id) ?? typeof id}`);
}
