/**
 * Builds a Sluice server: checks the sandbox, prepares the data directory, and wires the
 * session manager to the HTTP routes. `listen()` serves; `close()` stops every execution and
 * removes every workspace.
 */
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ERROR_STATUS, LANGUAGES, type ErrorBody, type ErrorCode, type Language } from '@sluice/protocol';
import {
  findBubblewrap,
  INSTALL_BUBBLEWRAP,
  isRoot,
  launchSandbox,
  prepareDataDir,
  probeRuntime,
  UIDPool,
  createWorkspace,
  removeWorkspace,
  type RuntimeInfo,
  type SandboxHostPaths,
} from '@sluice/sandbox';
import type { ServerConfig } from './config.js';
import { ApiError } from './internal/api-error.js';
import { baseEnv } from './internal/execution/execution.js';
import type { ServerContext } from './internal/http/context.js';
import { executionRoutes } from './internal/http/execution-routes.js';
import { IdempotencyCache } from './internal/http/idempotency-cache.js';
import { runRoutes } from './internal/http/run-routes.js';
import { sessionRoutes } from './internal/http/session-routes.js';
import { systemRoutes } from './internal/http/system-routes.js';
import { SessionManager } from './internal/session/session-manager.js';

/** A built server. */
export interface SluiceServer {
  app: FastifyInstance;
  config: ServerConfig;
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>;
  /** Stops listening, cancels every execution, removes every workspace. */
  close(): Promise<void>;
}

/** Creates a server from a config. Fails if bubblewrap is missing or the data dir is unusable. */
export async function createSluiceServer(config: ServerConfig): Promise<SluiceServer> {
  const bwrapPath = await findBubblewrap();
  if (!bwrapPath) throw new Error(`bubblewrap is not installed; install it with: ${INSTALL_BUBBLEWRAP}`);
  const paths = await prepareDataDir(config.dataDir);
  const uidPool = isRoot() ? new UIDPool(config.uidBase, config.uidCount) : undefined;

  const app = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes,
    // Streams are long-lived; only the request itself must arrive in time.
    requestTimeout: 60_000,
    return503OnClosing: true,
  });

  const languages = new Map<Language, RuntimeInfo>();
  for (const info of await Promise.all(LANGUAGES.map((l) => probeRuntime(l)))) languages.set(info.language, info);
  const resolveLanguage = (name: string): Language => {
    const info = languages.get(name as Language);
    const installed = [...languages.values()].filter((i) => i.installed).map((i) => i.language);
    if (!info) {
      throw new ApiError('UNSUPPORTED_LANGUAGE', `language: expected one of ${installed.join(', ')}, got ${JSON.stringify(name)}`);
    }
    if (!info.installed) throw new ApiError('UNSUPPORTED_LANGUAGE', `language: ${name} is not available here: ${info.reason ?? 'not installed'}`);
    return info.language;
  };

  const sessions = new SessionManager({ config, paths, bwrapPath, uidPool, resolveLanguage, log: app.log });
  const shutdown = new AbortController();
  let healthProblem: string | null = 'the sandbox self-check has not finished';
  const ctx: ServerContext = {
    config,
    sessions,
    languages,
    resolveLanguage,
    idempotency: new IdempotencyCache(),
    health: () => healthProblem,
    shutdown: shutdown.signal,
  };

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
    const apiErr = toApiError(err, config);
    // A client still sending its oversized body would see EPIPE instead of our answer: read
    // and discard the rest first (bounded in bytes and time), then answer and close.
    if (apiErr.code === 'PAYLOAD_TOO_LARGE' && !req.raw.complete) {
      await discardBody(req.raw, Math.max(64 * 1024 * 1024, config.bodyLimitBytes * 16), 10_000);
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

  const selfCheck = selfTest(paths, bwrapPath, uidPool).then((problem) => {
    healthProblem = problem;
    if (problem) app.log.error(`sandbox self-check failed: ${problem}`);
  });

  return {
    app,
    config,
    async listen() {
      await selfCheck;
      return app.listen({ host: config.host, port: config.port });
    },
    async close() {
      // Stop accepting, cancel everything (so open streams receive their done), then end the rest.
      const closing = app.close();
      await sessions.close();
      shutdown.abort();
      await closing;
    },
  };
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

/** Maps any error a route or Fastify raised onto the contract's table. */
function toApiError(err: FastifyError | ApiError, config: ServerConfig): ApiError {
  if (err instanceof ApiError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', `request body: expected at most ${config.bodyLimitBytes} bytes (SLUICE_BODY_LIMIT); send less code or upload files separately`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('INVALID_REQUEST', 'Content-Length: does not match the body that arrived');
    default:
      break;
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return new ApiError('PAYLOAD_TOO_LARGE', `request body: expected at most ${config.bodyLimitBytes} bytes (SLUICE_BODY_LIMIT)`);
  if (status >= 400 && status < 500) {
    const code = (Object.keys(ERROR_STATUS) as ErrorCode[]).find((c) => ERROR_STATUS[c] === status) ?? 'INVALID_REQUEST';
    return new ApiError(code, err.message);
  }
  return new ApiError('INTERNAL', 'internal error; see the server log');
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
      env: baseEnv(),
      network: false,
      tmpBytes: 1024 * 1024,
      codePath: '/run/sluice/check.sh',
      command: ['/usr/bin/bash', '/run/sluice/check.sh'],
      code: 'test -w /workspace && ! test -w /usr',
      limits: { fileSize: 1024 * 1024, openFiles: 64, processes: 64 },
      onOutput: (_s, chunk) => (stderr += chunk.toString('utf8')),
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
