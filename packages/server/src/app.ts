/**
 * Builds a Sluice server: checks the sandbox, prepares the data directory, and wires the
 * session manager to the HTTP routes. `listen()` serves; `drain()` stops taking work and lets
 * what runs finish; `close()` stops every execution and removes every workspace.
 */
import { setMaxListeners } from 'node:events';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import Fastify, { LogController, type ConnectionError, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ERROR_STATUS, LANGUAGES, type ErrorBody, type ErrorCode, type Language } from '@sluice/protocol';
import {
  findBubblewrap,
  INSTALL_BUBBLEWRAP,
  isRoot,
  launchSandbox,
  prepareDataDir,
  baseEnv,
  probeRuntime,
  UIDPool,
  warmRuntimes,
  createWorkspace,
  removeWorkspace,
  randomHex,
  type CgroupSupport,
  type RuntimeInfo,
  type SandboxHostPaths,
} from '@sluice/sandbox';
import { enabledLanguages, workerURL, type ServerConfig } from './config.js';
import { ApiError } from './internal/api-error.js';
import { KeyRing } from './internal/auth/api-keys.js';
import { exposureProblem, isLoopbackHost } from './internal/auth/exposure.js';
import { AgentRuns } from './internal/agent/agent-runs.js';
import type { Backend, ExecutionHandle } from './internal/backend/backend.js';
import { connectCluster } from './internal/cluster/cluster.js';
import { internalRoutes } from './internal/cluster/internal-api.js';
import { RedisBackend } from './internal/cluster/redis-backend.js';
import { RedisAgents } from './internal/cluster/redis-agents.js';
import { startReaper } from './internal/cluster/reaper.js';
import { WorkerNode } from './internal/cluster/worker-node.js';
import { LocalBackend } from './internal/backend/local-backend.js';
import { LocalAgents } from './internal/backend/local-agents.js';
import type { AgentBackend } from './internal/backend/agent-backend.js';
import { agentRoutes } from './internal/http/agent-routes.js';
import { agUIRoutes } from './internal/http/ag-ui-routes.js';
import { authenticate } from './internal/http/authenticate.js';
import type { ServerContext } from './internal/http/context.js';
import { executionRoutes } from './internal/http/execution-routes.js';
import { IdempotencyCache } from './internal/http/idempotency-cache.js';
import { runRoutes } from './internal/http/run-routes.js';
import { sessionRoutes } from './internal/http/session-routes.js';
import { systemRoutes } from './internal/http/system-routes.js';
import { fileRoutes } from './internal/http/file-routes.js';
import { McpSessions, mcpRoutes } from './internal/http/mcp-routes.js';
import { metricsRoutes } from './internal/http/metrics-routes.js';
import { openAPIRoutes } from './internal/http/openapi-routes.js';
import { REDACTED_LOG_PATHS, requestLog } from './internal/http/request-log.js';
import { ServerMetrics } from './internal/metrics/server-metrics.js';
import { WireBytes } from './internal/metrics/wire-bytes.js';
import { wsRoutes } from './internal/http/ws-routes.js';
import { SessionManager } from './internal/session/session-manager.js';

/** A built server. */
export interface SluiceServer {
  app: FastifyInstance;
  config: ServerConfig;
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>;
  /**
   * Stops gracefully: from now on new sessions and runs are refused (503 SANDBOX_UNAVAILABLE,
   * `/healthz` too) while everything else keeps answering; queued executions are cancelled,
   * running ones get up to `graceMs` to finish (less if `cutShort` aborts), then `close()`.
   */
  drain(graceMs: number, cutShort?: AbortSignal): Promise<void>;
  /** Stops listening, cancels every execution (open streams get their `done`), removes every workspace. */
  close(): Promise<void>;
}

/** How a server is built beyond its config. */
export interface SluiceServerOptions {
  /**
   * A worker lost its Redis lease and killed its sandboxes (docs/scale-out.md): the process must
   * go. By default it exits with status 75 (EX_TEMPFAIL), for its supervisor to restart it.
   */
  onFatal?(why: string): void;
}

/** Largest request header block, bytes (Node's default, fixed here so no flag can raise it). */
const MAX_HEADER_BYTES = 16 * 1024;

/** Request ids taken from clients: short and printable, so they are safe in logs and headers. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Creates a server from a config. Fails if the config would expose an unauthenticated server,
 * if bubblewrap is missing, or if the data dir is unusable.
 */
export async function createSluiceServer(config: ServerConfig, opts: SluiceServerOptions = {}): Promise<SluiceServer> {
  const exposed = exposureProblem(config);
  if (exposed) throw new Error(exposed);
  const keys = new KeyRing(config.apiKeys);
  // With Redis, role `api` runs no code: it needs no bubblewrap, and starts no sandbox.
  const scaled = config.redisURL !== '';
  const runsCode = !scaled || config.role !== 'api';
  const bwrapPath = runsCode ? await findBubblewrap() : '';
  if (bwrapPath === undefined) throw new Error(`bubblewrap is not installed; install it with: ${INSTALL_BUBBLEWRAP}`);
  const paths = await prepareDataDir(config.dataDir);
  // Compiler caches for typescript and java, built once in the background: runs before it is
  // done still work, only slower. close() stops it and waits for its scratch files to go.
  const shutdown = new AbortController();
  const warming = config.warmRuntimes && runsCode ? warmRuntimes(paths.runtimeDir, shutdown.signal) : Promise.resolve();
  const uidPool = isRoot() ? new UIDPool(config.uidBase, config.uidCount) : undefined;

  const headersTimeoutMs = config.headersTimeoutSec * 1000;
  const app = Fastify({
    // One line per request from request-log.ts instead of Fastify's two; headers never logged.
    logger: { level: config.logLevel, redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' } },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // Streams are long-lived responses; only the request itself must arrive in time.
    requestTimeout: config.requestTimeoutSec * 1000,
    keepAliveTimeout: config.keepAliveTimeoutSec * 1000,
    http: {
      headersTimeout: headersTimeoutMs,
      // Node enforces both timeouts only when it checks its connections (every 30 s by default).
      connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(headersTimeoutMs / 4))),
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    clientErrorHandler: answerClientError,
    // What Fastify rejects before routing (a bad percent-escape, an over-long path parameter)
    // gets the contract's error shape too, not Fastify's own body.
    frameworkErrors: (err, req, reply) => {
      const apiErr = toApiError(err, config, req);
      const body: ErrorBody = { error: { code: apiErr.code, message: apiErr.message } };
      void (reply as FastifyReply).code(apiErr.status).send(body);
    },
    return503OnClosing: true,
    // A client's X-Request-Id (the SDK sends one) names the request in our logs and comes back
    // on the answer, so a failure can be found on both sides; a missing or odd one is replaced.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomHex(12);
    },
  });
  app.addHook('onRequest', async (req, reply) => {
    // On the raw response: streams write their head themselves.
    reply.raw.setHeader('x-request-id', req.id);
  });
  app.server.maxConnections = config.maxConnections;
  let lastDropWarning = 0;
  app.server.on('drop', () => {
    if (Date.now() - lastDropWarning < 10_000) return;
    lastDropWarning = Date.now();
    app.log.warn(`refused a connection: ${config.maxConnections} are open, the maximum (SLUICE_MAX_CONNECTIONS)`);
  });

  const languages = new Map<Language, RuntimeInfo>();
  const enabled = enabledLanguages(config);
  for (const info of await Promise.all(LANGUAGES.map((l) => probeRuntime(l)))) {
    const off = enabled !== null && !enabled.includes(info.language);
    languages.set(info.language, off ? { ...info, installed: false, reason: 'not enabled on this server (SLUICE_LANGUAGES)' } : info);
  }
  const resolveLanguage = (name: string): Language => {
    const info = languages.get(name as Language);
    const installed = [...languages.values()].filter((i) => i.installed).map((i) => i.language);
    if (!info) {
      throw new ApiError('UNSUPPORTED_LANGUAGE', `language: expected one of ${installed.join(', ')}, got ${JSON.stringify(name)}`);
    }
    if (!info.installed) throw new ApiError('UNSUPPORTED_LANGUAGE', `language: ${name} is not available here: ${info.reason ?? 'not installed'}`);
    return info.language;
  };

  // An API node's manager never holds a session (its backend is Redis's): no pre-started shells.
  const sessions = new SessionManager({ config: runsCode ? config : { ...config, poolSize: 0 }, paths, bwrapPath, uidPool, resolveLanguage, log: app.log });
  // Every open stream listens on it (and removes its listener when it ends): no fixed bound.
  setMaxListeners(0, shutdown.signal);
  let healthProblem: string | null = 'the sandbox self-check has not finished';
  let draining = false;
  const agents = new AgentRuns({
    config,
    sessions,
    // Called only once requests flow, when `local` (and a worker's `worker`) exist. On a worker the
    // session is local, and its executions are teed into Redis so any node can follow them.
    submit: (owner, sessionID, body): Promise<ExecutionHandle> => (worker ? worker.submitRun(owner, sessionID, body) : local.submitRun(owner, sessionID, body)),
    languages: () => [...languages.values()].filter((i) => i.installed).map((i) => i.language),
    resolveLanguage,
    log: app.log,
  });
  const wire = new WireBytes();
  const metrics = new ServerMetrics({
    sessions: () => sessions.sessionCount,
    kernels: () => sessions.kernelCount,
    agentRuns: () => agents.stats.runs,
    llmTokens: () => ({ prompt: agents.stats.promptTokens, completion: agents.stats.completionTokens }),
    drainStreamBytes: () => wire.drain(),
  });
  const local = new LocalBackend({ sessions, config, resolveLanguage, metrics, log: app.log });
  // With SLUICE_REDIS_URL (docs/scale-out.md): a worker takes commands from Redis for its local
  // sessions; an API node's backend is Redis's; `all` is both. Without it, nothing of this exists.
  const cluster = scaled ? connectCluster(config, app.log) : null;
  let worker: WorkerNode | null = null;
  let backend: Backend = local;
  let agentBackend: AgentBackend = new LocalAgents(agents);
  if (cluster) {
    const onFatal =
      opts.onFatal ??
      ((why: string): void => {
        app.log.fatal({ why }, 'exiting: this worker lost its Redis lease');
        process.exit(75);
      });
    if (config.role !== 'api') worker = new WorkerNode({ ...cluster, sessions, backend: local, agents, config, log: app.log, onFenced: onFatal });
    if (config.role !== 'worker') {
      const noCgroups: CgroupSupport = { version: 'none', reason: 'this API node runs no sandboxes (--role api)' };
      const redisBackend = new RedisBackend({ ...cluster, sessions: cluster.sessionRegistry, config, cgroups: () => (runsCode ? sessions.cgroups() : Promise.resolve(noCgroups)) });
      backend = redisBackend;
      agentBackend = new RedisAgents({ ...cluster, sessions: cluster.sessionRegistry, backend: redisBackend });
    }
    startReaper({ ...cluster, sessions: cluster.sessionRegistry, retentionSec: config.logRetentionSec, log: app.log }, shutdown.signal);
  }
  const ctx: ServerContext = {
    config,
    backend,
    budgetLog: (log, onRelease) => sessions.budgetLog(log, onRelease),
    agents: agentBackend,
    metrics,
    log: app.log,
    languages,
    resolveLanguage,
    idempotency: cluster ? cluster.idempotency : new IdempotencyCache(),
    ...(cluster ? { cluster: { role: config.role, redisProblem: () => cluster.redisProblem() } } : {}),
    health: () => (draining ? 'the server is shutting down and takes no new sessions or runs; retry shortly' : healthProblem),
    draining: () => draining,
    shutdown: shutdown.signal,
    authEnabled: keys.enabled,
  };

  requestLog(app);
  authenticate(app, keys);
  if (cluster) refuseByRole(app, config.role);

  // Every body is JSON whatever its declared type, so `curl -d '{…}'` works as typed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new ApiError('INVALID_REQUEST', `request body: expected JSON, got malformed JSON (${(err as Error).message})`), undefined);
    }
  });
  app.setErrorHandler(async (err: FastifyError | ApiError, req, reply) => {
    const apiErr = toApiError(err, config, req);
    // A client still sending its oversized body would see EPIPE instead of our answer: read
    // and discard the rest first (bounded in bytes and time), then answer and close.
    if (apiErr.code === 'PAYLOAD_TOO_LARGE' && !req.raw.complete) {
      await discardBody(req.raw, Math.max(64 * 1024 * 1024, config.bodyLimitBytes * 16, config.maxUploadBytes * 2), 10_000);
      void reply.header('Connection', 'close');
    }
    if (apiErr.code === 'INTERNAL') req.log.error({ err }, 'request failed');
    if (apiErr.retryAfter !== undefined) void reply.header('Retry-After', String(apiErr.retryAfter));
    const body: ErrorBody = { error: { code: apiErr.code, message: apiErr.message } };
    return reply.code(apiErr.status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url.split('?')[0] ?? ''}` } };
    return reply.code(404).send(body);
  });

  sessionRoutes(app, ctx);
  runRoutes(app, ctx);
  executionRoutes(app, ctx);
  systemRoutes(app, ctx);
  fileRoutes(app, ctx);
  wsRoutes(app, ctx, keys);
  agentRoutes(app, ctx);
  agUIRoutes(app, ctx);
  const mcp = new McpSessions(ctx);
  mcpRoutes(app, mcp);
  metricsRoutes(app, metrics, wire);
  openAPIRoutes(app);
  if (worker) {
    const w = worker;
    internalRoutes(app, local, () => w.token, config.maxUploadBytes);
  }

  // A failing check (even one that throws: a mount refused, no seccomp filter for this CPU)
  // becomes /healthz's 503 with the reason; the server still starts and says why.
  const selfCheck = (runsCode ? selfTest(paths, bwrapPath, uidPool) : Promise.resolve(null))
    .catch((err: Error) => `the sandbox self-check could not run: ${err.message}`)
    .then((problem) => {
      healthProblem = problem;
      if (problem) app.log.error(`sandbox self-check failed: ${problem}`);
    });

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      worker?.stopIntake();
      // Stop accepting, cancel everything (so open streams receive their done), then end the rest.
      const appClosed = app.close();
      // Fastify closes the connections idle at this moment; one busy now (a request in flight, a
      // stream until its done) would stay open after its answer for the keep-alive timeout (72 s),
      // and the process with it. Each is closed as soon as it is idle.
      const idleCloser = setInterval(() => app.server.closeIdleConnections(), 50);
      void appClosed.finally(() => clearInterval(idleCloser)).catch(() => {});
      // Agent runs first: each ends (cancelled) once its running tool is gone.
      await agents.close();
      // MCP sessions next: their transports close and their running tools are cancelled.
      await mcp.close();
      await sessions.close();
      // A worker's logs are in Redis by now; then it deregisters.
      await worker?.stop();
      shutdown.abort();
      await Promise.all([appClosed, warming]);
      await cluster?.conn.close();
    })();
    return closing;
  };

  return {
    app,
    config,
    async listen() {
      await selfCheck;
      if (!keys.enabled && config.insecureNoAuth && !isLoopbackHost(config.host)) {
        app.log.warn(`listening on ${config.host} without API keys (--insecure-no-auth): anyone who can reach it can run code`);
      }
      const url = await app.listen({ host: config.host, port: config.port });
      // A worker registers once API nodes can reach it, at the port it got (PORT may be 0).
      if (worker) {
        try {
          await worker.start(workerURL(config, (app.server.address() as AddressInfo).port));
        } catch (err) {
          await close();
          throw new Error(`could not register this worker in Redis (SLUICE_REDIS_URL): ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      return url;
    },
    async drain(graceMs, cutShort) {
      if (!draining) {
        draining = true;
        sessions.drain();
        agents.drain();
        // API nodes place no new session here from now on.
        worker?.drain();
      }
      const grace = new AbortController();
      const onCut = (): void => grace.abort();
      cutShort?.addEventListener('abort', onCut, { once: true });
      try {
        await Promise.race([Promise.all([sessions.whenIdle(), agents.whenIdle()]), delay(cutShort?.aborted ? 0 : graceMs, grace.signal)]);
      } finally {
        grace.abort();
        cutShort?.removeEventListener('abort', onCut);
      }
      await close();
    },
    close,
  };
}

/** With Redis, what a role does not serve answers 503: a worker's public API (API nodes take the requests). */
function refuseByRole(app: FastifyInstance, role: ServerConfig['role']): void {
  app.addHook('onRequest', async (req) => {
    // The route matched, not the raw URL: the router decodes it first (`/%61pi/…` is `/api/…`).
    // No route (a 404 to be): the decoded path, so `/api/nope` on a worker says "worker", not "not found".
    const path = req.routeOptions.url ?? decodedPath(req.url);
    if (role === 'worker' && (path.startsWith('/api/') || path === '/mcp')) {
      throw new ApiError('SANDBOX_UNAVAILABLE', 'this node is a worker (--role worker) and takes no requests of its own; send them to an API node (docs/scale-out.md)');
    }
  });
}

function decodedPath(url: string): string {
  const raw = url.split('?')[0] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the timer is cleared either way). */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Answers what Node's HTTP parser rejected before a request existed (headers too slow, a header
 * block too large, bytes that are not HTTP) in the contract's error shape, then closes the
 * connection. The status is HTTP's own (408, 431, 400); the code is INVALID_REQUEST.
 */
function answerClientError(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status: number;
  let message: string;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    message = 'request: did not arrive in time (SLUICE_HEADERS_TIMEOUT for the headers, SLUICE_REQUEST_TIMEOUT for the whole request)';
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    message = `request headers: expected at most ${MAX_HEADER_BYTES} bytes in all`;
  } else {
    status = 400;
    message = `request: not valid HTTP/1.1 (${err.code})`;
  }
  this.log.debug({ err }, 'client error');
  // Never write into a response already under way (Node's own rule for 'clientError').
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    const body = JSON.stringify({ error: { code: 'INVALID_REQUEST', message } } satisfies ErrorBody);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Reads and drops what is left of a request body, up to `maxBytes` or `maxMs`. */
function discardBody(req: IncomingMessage, maxBytes: number, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', finish);
      req.off('error', finish);
      req.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) finish();
    };
    const timer = setTimeout(finish, maxMs);
    req.on('data', onData);
    req.once('end', finish);
    req.once('error', finish);
    req.once('close', finish);
    req.resume();
  });
}

/** True for a files-API upload (its body limit is SLUICE_MAX_UPLOAD). */
function isUpload(url: string): boolean {
  return /^\/api\/sessions\/[^/]+\/files\//.test(url);
}

/** Maps any error a route or Fastify raised onto the contract's table. */
function toApiError(err: FastifyError | ApiError, config: ServerConfig, req: Pick<FastifyRequest, 'url' | 'headers'>): ApiError {
  const limit = isUpload(req.url)
    ? `request body: expected a file of at most ${config.maxUploadBytes} bytes (SLUICE_MAX_UPLOAD)`
    : `request body: expected at most ${config.bodyLimitBytes} bytes (SLUICE_BODY_LIMIT); send less code or upload files separately`;
  if (err instanceof ApiError) return err;
  const path = JSON.stringify(shorten(req.url.split('?')[0] ?? ''));
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', limit);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('INVALID_REQUEST', 'Content-Length: does not match the body that arrived');
    case 'FST_ERR_BAD_URL':
      return new ApiError('INVALID_REQUEST', `URL: expected UTF-8 percent-escapes (as encodeURIComponent makes them), got ${path}`);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError('INVALID_REQUEST', `URL: a path parameter of ${path} is too long (session and execution ids have at most 64 characters)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        'INVALID_REQUEST',
        `Content-Type: expected a media type such as application/json (type/subtype), got ${JSON.stringify(shorten(String(req.headers['content-type'] ?? '')))}`,
      );
    default:
      break;
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return new ApiError('PAYLOAD_TOO_LARGE', limit);
  if (status >= 400 && status < 500) {
    const code = (Object.keys(ERROR_STATUS) as ErrorCode[]).find((c) => ERROR_STATUS[c] === status) ?? 'INVALID_REQUEST';
    return new ApiError(code, err.message);
  }
  return new ApiError('INTERNAL', 'internal error; see the server log');
}

/** Cuts what a client sent to a length fit for an error message. */
function shorten(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Runs `true` in a real sandbox; returns null when it worked, or what went wrong. */
async function selfTest(paths: SandboxHostPaths, bwrapPath: string, uidPool: UIDPool | undefined): Promise<string | null> {
  const uid = uidPool?.acquire();
  const workspace = await createWorkspace(paths, uid);
  try {
    let stderr = '';
    const proc = launchSandbox({
      bwrapPath,
      hostUID: uid,
      workspace,
      passwdFile: paths.passwdFile,
      groupFile: paths.groupFile,
      reporterFile: paths.reporterFile,
      runtimeDir: paths.runtimeDir,
      env: baseEnv(),
      network: false,
      tmpBytes: 1024 * 1024,
      codePath: '/run/sluice/check.sh',
      command: ['/usr/bin/bash', '/run/sluice/check.sh'],
      code: 'test -w /workspace && ! test -w /usr',
      stdin: '',
      limits: { fileSize: 1024 * 1024, openFiles: 64, processes: 64 },
      // Only the start of what it says is kept for the message.
      onOutput: (_s, chunk) => {
        if (stderr.length < 4096) stderr += chunk.toString('utf8').slice(0, 4096);
      },
    });
    const timer = setTimeout(() => proc.kill(), 15_000);
    const exit = await proc.exited;
    clearTimeout(timer);
    if (exit.setupError) return `bubblewrap could not start a sandbox: ${exit.setupError}`;
    if (exit.exitCode !== 0) return `a sandboxed test command failed (exit ${exit.exitCode}): ${stderr.trim() || 'workspace not writable or /usr writable'}`;
    return null;
  } finally {
    await removeWorkspace(workspace);
    if (uid !== undefined) uidPool?.release(uid);
  }
}
