/** What every route needs: config, the backend (sessions and executions), agent runs, languages, health, idempotency. */
import type { FastifyBaseLogger } from 'fastify';
import type { Language, Validated } from '@sluice/protocol';
import type { RuntimeInfo } from '@sluice/sandbox';
import type { ServerConfig, ServerRole } from '../../config.js';
import { ApiError } from '../api-error.js';
import type { AgentBackend } from '../backend/agent-backend.js';
import type { Backend } from '../backend/backend.js';
import type { LogBudget } from '../execution/log-budget.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';

export interface ServerContext {
  config: ServerConfig;
  /** Sessions and executions, wherever they run (backend/backend.ts). */
  backend: Backend;
  /**
   * Counts a log of this process (an MCP stream's) in its log budget (SLUICE_LOG_BUDGET): past
   * it, the log sheds its oldest events, or is forgotten once finished (`onRelease`).
   */
  budgetLog: LogBudget['track'];
  /** Agent runs and the sessions' conversations, wherever they run (backend/agent-backend.ts). */
  agents: AgentBackend;
  /** The Prometheus registry of this server and what feeds it. */
  metrics: ServerMetrics;
  /** The server's logger (a request's own, `req.log`, carries its id). */
  log: FastifyBaseLogger;
  languages: Map<Language, RuntimeInfo>;
  resolveLanguage(name: string): Language;
  /** `Idempotency-Key`s: this process's (IdempotencyCache), or Redis's across nodes (RedisIdempotency). */
  idempotency: Idempotency;
  /** With SLUICE_REDIS_URL: this node's role and whether Redis answers (null when it does, else why not), for /healthz. */
  cluster?: { role: ServerRole; redisProblem(): Promise<string | null> };
  /** Null once the sandbox self-check passed; otherwise why code cannot run. */
  health(): string | null;
  /** True from the moment shutdown begins (before sessions close; `shutdown` aborts after). */
  draining(): boolean;
  /** Aborts every open stream (server shutdown). */
  shutdown: AbortSignal;
  /** True when requests need an API key. */
  authEnabled: boolean;
}

/** Where `Idempotency-Key`s are remembered (see idempotency-cache.ts for the semantics). */
export interface Idempotency {
  resolve(owner: string | null, key: string, fingerprint: string, isLive: (id: string) => boolean | Promise<boolean>, start: () => Promise<string>): Promise<string>;
}

/** Unwraps a validator's result or throws the matching ApiError. */
export function check<T>(r: Validated<T>): T {
  if (!r.ok) throw new ApiError(r.code, r.message);
  return r.value;
}

/** Milliseconds since the epoch → ISO 8601, null stays null. */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
