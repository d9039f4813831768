/**
 * Turns a validated run request into a queued execution: shared by the HTTP run routes and the
 * WebSocket `execute` message, so both apply the same language, mode, timeout and admission rules.
 */
import { LANGUAGES, type Language, type RunRequest } from '@sluice/protocol';
import { defaultModeFor, modesFor, runtimeFor } from '@sluice/sandbox';
import { ApiError } from '../api-error.js';
import type { Execution } from '../execution/execution.js';
import { observeExecution, type ExecutionLog } from '../metrics/observe-execution.js';
import type { ServerContext } from './context.js';

/** Queues the run; `log` gets the line logged when it ends (a request's logger names the request). */
export async function submitRun(ctx: ServerContext, owner: string | null, sessionID: string, body: RunRequest, log: ExecutionLog = ctx.log): Promise<Execution> {
  // Check the language before creating a session, so a typo does not leave one behind.
  const requested = body.language === undefined ? undefined : ctx.resolveLanguage(body.language);
  if (requested !== undefined) checkMode(body.mode, requested);
  // Refuse a run that cannot be admitted before a session is created for it.
  ctx.sessions.checkRun(owner, sessionID);
  const session = await ctx.sessions.getOrCreate(owner, sessionID);
  const language = requested ?? session.settings.language;
  const mode = body.mode ?? defaultModeFor(language);
  checkMode(mode, language);
  const runtime = runtimeFor(language);
  if (!runtime) throw new ApiError('UNSUPPORTED_LANGUAGE', `language: ${language} cannot run on this server`);
  const timeoutSec = Math.min(body.timeout ?? session.settings.timeoutSec ?? ctx.config.defaultTimeoutSec, ctx.config.maxTimeoutSec);
  const exec = ctx.sessions.submit(session, {
    language,
    mode,
    runtime,
    code: body.code,
    stdin: body.stdin,
    env: body.env ?? {},
    timeoutSec,
  });
  observeExecution(exec, ctx.metrics, log);
  return exec;
}

function checkMode(mode: RunRequest['mode'], language: Language): void {
  if (mode !== undefined && !modesFor(language).includes(mode)) {
    const kernels = LANGUAGES.filter((l) => modesFor(l).includes(mode));
    throw new ApiError('INVALID_REQUEST', `mode: "${mode}" is available for ${kernels.join(' and ')}; ${language} runs in "${defaultModeFor(language)}" mode`);
  }
}
