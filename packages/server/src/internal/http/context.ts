/** What every route needs: config, the session and agent managers, languages, health, idempotency. */
import type { FastifyBaseLogger } from 'fastify';
import type { Language, Validated } from '@sluice/protocol';
import type { RuntimeInfo } from '@sluice/sandbox';
import type { ServerConfig } from '../../config.js';
import type { AgentRuns } from '../agent/agent-runs.js';
import { ApiError } from '../api-error.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import type { SessionManager } from '../session/session-manager.js';
import type { IdempotencyCache } from './idempotency-cache.js';

export interface ServerContext {
  config: ServerConfig;
  sessions: SessionManager;
  /** Agent runs and the sessions' conversations. */
  agents: AgentRuns;
  /** The Prometheus registry of this server and what feeds it. */
  metrics: ServerMetrics;
  /** The server's logger (a request's own, `req.log`, carries its id). */
  log: FastifyBaseLogger;
  languages: Map<Language, RuntimeInfo>;
  resolveLanguage(name: string): Language;
  idempotency: IdempotencyCache;
  /** Null once the sandbox self-check passed; otherwise why code cannot run. */
  health(): string | null;
  /** Aborts every open stream (server shutdown). */
  shutdown: AbortSignal;
  /** True when requests need an API key. */
  authEnabled: boolean;
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
