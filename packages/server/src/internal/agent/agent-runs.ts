/**
 * Owns the server's agent runs: admission (a model endpoint configured, an allowed model, one
 * run at a time per session, caps on concurrent runs server-wide and per tenant), each
 * session's conversation, lookup scoped to the owner, retention of finished runs, and the
 * counts the metrics report.
 */
import { AGENT_TOOLS, type AgentEndReason, type AgentRequest, type Language, type RunRequest } from '@sluice/protocol';
import { allowedModels, type ServerConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import { localSessionFiles } from '../backend/local-session-files.js';
import { randomID } from '../random-id.js';
import type { SessionManager } from '../session/session-manager.js';
import { AgentRun, type ChatFn } from './agent-run.js';
import type { ChatMessage } from './llm/chat-request.js';
import { streamChat } from './llm/chat-stream.js';
import { SessionTools, type SubmittedRun } from './session-tools.js';

export interface AgentRunsDeps {
  config: ServerConfig;
  sessions: SessionManager;
  /** Queues code in a session exactly like a run request. */
  submit(owner: string | null, sessionID: string, body: RunRequest): Promise<SubmittedRun>;
  /** Languages this server runs, for `run_code`'s schema. */
  languages(): Language[];
  resolveLanguage(name: string): Language;
  log: { info(obj: object, msg: string): void };
  /** The model client (streamChat; tests may give their own). */
  chat?: ChatFn;
}

/** Counts for the metrics (sluice_agent_runs_total{reason}, sluice_llm_tokens_total{kind}). */
export interface AgentStats {
  runs: Record<AgentEndReason, number>;
  promptTokens: number;
  completionTokens: number;
}

export const DEFAULT_SYSTEM_PROMPT =
  'You are a capable assistant with a sandboxed Linux session. When running code or reading and writing files would help you answer, ' +
  'use the tools: code runs in /workspace, and the user sees its output live. Python and JavaScript keep their state between run_code calls. ' +
  'Once you have what you need, answer concisely.';

/** Characters a session's conversation may hold; past it the oldest exchanges are dropped. */
const MAX_CONVERSATION_CHARS = 4 * 1024 * 1024;
/** Finished runs held at most (the oldest are forgotten first), whatever their age and the log budget. */
const MAX_FINISHED_RUNS = 1000;
/** Memory bound of one run's event log. */
const MAX_RUN_LOG_BYTES = 64 * 1024 * 1024;

function key(owner: string | null, sessionID: string): string {
  return `${owner ?? ''}\u0000${sessionID}`;
}

export class AgentRuns {
  private readonly runs = new Map<string, AgentRun>();
  /** The running run of each session. */
  private readonly bySession = new Map<string, AgentRun>();
  private readonly conversations = new Map<string, ChatMessage[]>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private draining = false;
  readonly stats: AgentStats = {
    runs: { completed: 0, max_turns: 0, length: 0, cancelled: 0, error: 0 },
    promptTokens: 0,
    completionTokens: 0,
  };

  constructor(private readonly deps: AgentRunsDeps) {
    this.sweeper = setInterval(() => this.sweep(), 5000);
    this.sweeper.unref();
    deps.sessions.onSessionGone((owner, id) => this.sessionGone(owner, id));
  }

  /**
   * Starts a run in a session (created with defaults if it does not exist, like a run request);
   * `runID` is the id an API node chose (a worker's `agent` command). `inbox` (a worker's): the
   * session must exist here (no blank one is made for a session whose record lives on in Redis),
   * and `beforeStart` runs once the run is checked, before it starts (it records the run in
   * Redis: nothing starts that Redis does not know of).
   */
  async start(owner: string | null, sessionID: string, req: AgentRequest, runID: string = randomID(), inbox?: { beforeStart(run: AgentRun): Promise<void> }): Promise<AgentRun> {
    const c = this.deps.config;
    if (this.closed || this.draining) throw new ApiError('SANDBOX_UNAVAILABLE', 'the server is shutting down and starts no agent runs; retry shortly', { retryAfter: 5 });
    if (c.llmBaseURL === '') {
      throw new ApiError('LLM_UNAVAILABLE', 'agent runs need a model endpoint, and this server has none: set SLUICE_LLM_BASE_URL and SLUICE_LLM_MODEL (docs/agents.md)');
    }
    const models = allowedModels(c);
    const model = req.model ?? c.llmModel;
    if (!models.includes(model)) throw new ApiError('INVALID_REQUEST', `model: expected one of ${models.map((m) => JSON.stringify(m)).join(', ')} (SLUICE_LLM_MODELS), got ${JSON.stringify(model)}`);
    const language = req.language === undefined ? undefined : this.deps.resolveLanguage(req.language);
    this.admit(owner);
    const k = key(owner, sessionID);
    if (this.bySession.has(k)) throw busy(sessionID);
    const session = inbox ? this.deps.sessions.get(owner, sessionID) : await this.deps.sessions.getOrCreate(owner, sessionID);
    this.recheck(owner, sessionID);
    let conversation = this.conversations.get(k);
    if (!conversation) {
      conversation = [];
      this.conversations.set(k, conversation);
    }
    trimConversation(conversation, MAX_CONVERSATION_CHARS);
    const defaultLanguage = language ?? session.settings.language;
    const run = new AgentRun({
      id: runID,
      sessionID,
      owner,
      prompt: req.prompt,
      system: req.system ?? DEFAULT_SYSTEM_PROMPT,
      model,
      maxTurns: Math.min(req.max_turns ?? c.agentDefaultTurns, c.agentMaxTurns),
      tools: req.tools ?? [...AGENT_TOOLS],
      languages: this.deps.languages(),
      defaultLanguage,
      conversation,
      llm: { baseURL: c.llmBaseURL, apiKey: c.llmAPIKey, idleTimeoutMs: Math.round(c.llmIdleTimeoutSec * 1000) },
      chat: this.deps.chat ?? ((options, signal) => streamChat(options, signal)),
      toolHost: new SessionTools({
        files: localSessionFiles(session),
        submit: (body) => this.deps.submit(owner, sessionID, body),
        defaultLanguage,
        timeoutSec: req.timeout,
        maxOutputChars: c.agentToolOutputChars,
        killGraceMs: c.killGraceMs,
      }),
      maxLogBytes: MAX_RUN_LOG_BYTES,
    });
    if (inbox) {
      await inbox.beforeStart(run);
      this.recheck(owner, sessionID);
    }
    this.runs.set(run.id, run);
    this.bySession.set(k, run);
    // Its log counts in the server's budget with the executions' (past it, old finished runs are forgotten).
    this.deps.sessions.budgetLog(run.log, () => {
      if (this.runs.get(run.id) === run) this.runs.delete(run.id);
    });
    // The run keeps its session alive (the idle TTL does not run while the model thinks).
    const detach = this.deps.sessions.attach(owner, sessionID);
    void run.run().finally(() => {
      detach();
      if (this.bySession.get(k) === run) this.bySession.delete(k);
      const reason = run.endReason ?? 'error';
      this.stats.runs[reason]++;
      this.stats.promptTokens += run.usage.prompt_tokens;
      this.stats.completionTokens += run.usage.completion_tokens;
      this.deps.log.info(
        { run: run.id, session: sessionID, model, reason, turns: run.turns, total_tokens: run.usage.total_tokens, duration_ms: (run.finishedAt ?? Date.now()) - run.createdAt },
        'agent run finished',
      );
    });
    return run;
  }

  /** The run, or NOT_FOUND (also when another owner asks). */
  get(owner: string | null, runID: string): AgentRun {
    const run = this.runs.get(runID);
    if (!run || run.owner !== owner) throw new ApiError('NOT_FOUND', `no agent run with id ${JSON.stringify(runID)}`);
    return run;
  }

  /** True when the owner can still read this run. */
  has(owner: string | null, runID: string): boolean {
    return this.runs.get(runID)?.owner === owner;
  }

  /** Forgets a session's conversation (its files and kernels stay); SESSION_BUSY while a run goes on. */
  forget(owner: string | null, sessionID: string): void {
    const k = key(owner, sessionID);
    const running = this.bySession.get(k);
    if (running) throw new ApiError('SESSION_BUSY', `session ${JSON.stringify(sessionID)} has agent run ${running.id} going on; cancel it first (POST /api/agent-runs/${running.id}/cancel)`, { retryAfter: 1 });
    this.conversations.delete(k);
  }

  /** Agent runs going on now. */
  get running(): number {
    return this.bySession.size;
  }

  /** Takes no new runs; those going on may finish (see whenIdle). */
  drain(): void {
    this.draining = true;
  }

  /** Resolves once no run goes on. */
  async whenIdle(): Promise<void> {
    while (this.bySession.size > 0) await Promise.all([...this.bySession.values()].map((r) => r.finished));
  }

  /** Cancels every run and waits for their ends. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const running = [...this.bySession.values()];
    for (const r of running) r.cancel();
    await Promise.all(running.map((r) => r.finished));
  }

  private sessionGone(owner: string | null, sessionID: string): void {
    const k = key(owner, sessionID);
    this.bySession.get(k)?.cancel();
    this.conversations.delete(k);
  }

  /** Checked again after a wait: another start may have won meanwhile, or the server begun to stop. */
  private recheck(owner: string | null, sessionID: string): void {
    if (this.closed || this.draining) throw new ApiError('SANDBOX_UNAVAILABLE', 'the server is shutting down and starts no agent runs; retry shortly', { retryAfter: 5 });
    if (this.bySession.has(key(owner, sessionID))) throw busy(sessionID);
    this.admit(owner);
  }

  /** RATE_LIMITED unless another run fits, server-wide and for this owner. */
  private admit(owner: string | null): void {
    const c = this.deps.config;
    if (this.bySession.size >= c.maxAgentRuns) {
      throw new ApiError('RATE_LIMITED', `the server has ${this.bySession.size} agent runs going on, its maximum (SLUICE_MAX_AGENT_RUNS); retry when one has finished`, { retryAfter: 1 });
    }
    if (owner === null) return;
    let mine = 0;
    for (const r of this.bySession.values()) if (r.owner === owner) mine++;
    if (mine >= c.maxAgentRunsPerTenant) {
      throw new ApiError('RATE_LIMITED', `this API key has ${mine} agent runs going on, its maximum (SLUICE_MAX_AGENT_RUNS_PER_TENANT); wait for one to finish or cancel one`, { retryAfter: 1 });
    }
  }

  /** Finished runs past retention (or past the count bound, oldest first) are forgotten. */
  private sweep(): void {
    const now = Date.now();
    const finished = [...this.runs.values()].filter((r) => r.finishedAt !== null);
    const excess = finished.length - MAX_FINISHED_RUNS;
    for (const [i, r] of finished.entries()) {
      if (i < excess || now - (r.finishedAt ?? now) > this.deps.config.logRetentionSec * 1000) {
        this.runs.delete(r.id);
        r.log.release();
      }
    }
  }
}

function busy(sessionID: string): ApiError {
  return new ApiError('SESSION_BUSY', `session ${JSON.stringify(sessionID)} already has an agent run going on; one runs at a time per session (wait for its end or cancel it)`, {
    retryAfter: 1,
  });
}

/**
 * Drops the oldest exchanges (a user message and everything up to the next one) until the
 * conversation fits, keeping the system message and the latest exchange: whole exchanges, so
 * every tool call stays paired with its result.
 */
export function trimConversation(conv: ChatMessage[], maxChars: number): void {
  const size = (m: ChatMessage): number => (m.content?.length ?? 0) + ('tool_calls' in m && m.tool_calls ? JSON.stringify(m.tool_calls).length : 0);
  let total = conv.reduce((n, m) => n + size(m), 0);
  const first = conv[0]?.role === 'system' ? 1 : 0;
  while (total > maxChars) {
    const next = conv.findIndex((m, i) => i > first && m.role === 'user');
    if (next < 0) return;
    for (const m of conv.splice(first, next - first)) total -= size(m);
  }
}
