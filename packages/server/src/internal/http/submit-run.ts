/**
 * Turns a validated run request into a queued execution: shared by the HTTP run routes and the
 * WebSocket `execute` message, so both apply the same language, mode, timeout and admission rules.
 */
import type { Language, RunRequest } from '@sluice/protocol';
import { runtimeFor } from '@sluice/sandbox';
import { ApiError } from '../api-error.js';
import type { Execution } from '../execution/execution.js';
import { isKernelLanguage } from '../kernel/kernel.js';
import type { ServerContext } from './context.js';

export async function submitRun(ctx: ServerContext, owner: string | null, sessionID: string, body: RunRequest): Promise<Execution> {
  // Check the language before creating a session, so a typo does not leave one behind.
  const requested = body.language === undefined ? undefined : ctx.resolveLanguage(body.language);
  if (requested !== undefined) checkMode(body.mode, requested);
  // Refuse a run that cannot be admitted before a session is created for it.
  ctx.sessions.checkRun(owner, sessionID);
  const session = await ctx.sessions.getOrCreate(owner, sessionID);
  const language = requested ?? session.settings.language;
  // Kernel mode is the default where a kernel exists (python, javascript), as in a notebook.
  const mode = body.mode ?? (isKernelLanguage(language) ? 'kernel' : 'process');
  checkMode(mode, language);
  const runtime = runtimeFor(language);
  if (!runtime) throw new ApiError('UNSUPPORTED_LANGUAGE', `language: ${language} cannot run on this server`);
  const timeoutSec = Math.min(body.timeout ?? session.settings.timeoutSec ?? ctx.config.defaultTimeoutSec, ctx.config.maxTimeoutSec);
  return ctx.sessions.submit(session, {
    language,
    mode,
    runtime,
    code: body.code,
    stdin: body.stdin,
    env: body.env ?? {},
    timeoutSec,
  });
}

function checkMode(mode: RunRequest['mode'], language: Language): void {
  if (mode === 'kernel' && !isKernelLanguage(language)) {
    throw new ApiError('INVALID_REQUEST', `mode: "kernel" is available for python and javascript; ${language} runs in "process" mode`);
  }
}
