/**
 * What API nodes ask a worker to do (through its inbox, inbox.ts), and what each answers.
 * Every command names the session it concerns (owner + id): the worker handles one session's
 * commands in order, different sessions' at once.
 */
import { assertNever, isErrorCode, type AgentRequest, type CreateSessionRequest, type ErrorCode, type ExecutionState, type Language, type RunRequest, type SessionView } from '@sluice/protocol';
import { ApiError } from '../api-error.js';

interface SessionTarget {
  owner: string | null;
  session_id: string;
}

/** Create the session's sandbox home on this worker (the registry entry exists already). */
export interface CreateSessionCommand extends SessionTarget {
  type: 'create_session';
  request: CreateSessionRequest;
}
export interface DeleteSessionCommand extends SessionTarget {
  type: 'delete_session';
}
/** Queue a run under the execution id the API node chose (and recorded in the registry). */
export interface RunCommand extends SessionTarget {
  type: 'run';
  execution_id: string;
  request: RunRequest;
}
export interface CancelCommand extends SessionTarget {
  type: 'cancel';
  execution_id: string;
}
export interface StdinCommand extends SessionTarget {
  type: 'stdin';
  execution_id: string;
  data: string;
  eof: boolean;
}
/** Restart the session's kernels. */
export interface RestartCommand extends SessionTarget {
  type: 'restart';
}
export interface AgentCommand extends SessionTarget {
  type: 'agent';
  run_id: string;
  request: AgentRequest;
}
export interface AgentCancelCommand extends SessionTarget {
  type: 'agent_cancel';
  run_id: string;
}
export interface ForgetConversationCommand extends SessionTarget {
  type: 'forget_conversation';
}

export type WorkerCommand =
  | CreateSessionCommand
  | DeleteSessionCommand
  | RunCommand
  | CancelCommand
  | StdinCommand
  | RestartCommand
  | AgentCommand
  | AgentCancelCommand
  | ForgetConversationCommand;

export type CommandType = WorkerCommand['type'];
export type CommandOf<T extends CommandType> = Extract<WorkerCommand, { type: T }>;

/** What each command answers when it succeeds. */
export interface CommandResults {
  create_session: { session: SessionView };
  delete_session: Record<string, never>;
  run: { execution_id: string };
  cancel: { cancelled: boolean; state: ExecutionState };
  stdin: { accepted: boolean; state: ExecutionState };
  restart: { session: SessionView; restarted: Language[] };
  agent: { run_id: string };
  agent_cancel: { cancelled: boolean };
  forget_conversation: Record<string, never>;
}

/** A worker's refusal, as an ApiError says it. */
export interface WorkerError {
  code: ErrorCode;
  message: string;
  retryAfter?: number;
}

/** The reply to a command of type T. */
export type CommandReply<T extends CommandType> = { ok: true; value: CommandResults[T] } | { ok: false; error: WorkerError };

/** The worker's side: one handler per command type (a missing one is a type error). */
export type CommandHandlers = { [T in CommandType]: (command: CommandOf<T>) => Promise<CommandResults[T]> };

const TYPES: Record<CommandType, true> = {
  create_session: true,
  delete_session: true,
  run: true,
  cancel: true,
  stdin: true,
  restart: true,
  agent: true,
  agent_cancel: true,
  forget_conversation: true,
};

/**
 * Narrows a command read from an inbox. API nodes wrote it, so this guards against a version
 * mismatch between nodes rather than against attackers: it checks the type and the target;
 * the handlers validate request bodies as the HTTP routes do.
 */
export function parseWorkerCommand(json: string): WorkerCommand {
  const v: unknown = JSON.parse(json);
  if (typeof v !== 'object' || v === null) throw new Error('worker command: expected an object');
  const r = v as Record<string, unknown>;
  const type = r['type'];
  if (typeof type !== 'string' || !Object.hasOwn(TYPES, type)) throw new Error(`worker command: unknown type ${JSON.stringify(type)}`);
  if (typeof r['session_id'] !== 'string' || (r['owner'] !== null && typeof r['owner'] !== 'string')) throw new Error(`worker command ${type}: expected owner and session_id`);
  return v as WorkerCommand;
}

/** Runs the command's handler; the switch keeps each handler paired with its own command type. */
export async function dispatch(handlers: CommandHandlers, c: WorkerCommand): Promise<CommandResults[CommandType]> {
  switch (c.type) {
    case 'create_session':
      return handlers.create_session(c);
    case 'delete_session':
      return handlers.delete_session(c);
    case 'run':
      return handlers.run(c);
    case 'cancel':
      return handlers.cancel(c);
    case 'stdin':
      return handlers.stdin(c);
    case 'restart':
      return handlers.restart(c);
    case 'agent':
      return handlers.agent(c);
    case 'agent_cancel':
      return handlers.agent_cancel(c);
    case 'forget_conversation':
      return handlers.forget_conversation(c);
    default:
      return assertNever(c, 'worker command');
  }
}

/** The error reply for what a handler threw: an ApiError keeps its code, anything else is INTERNAL. */
export function errorReply(err: unknown): { ok: false; error: WorkerError } {
  if (err instanceof ApiError) {
    return { ok: false, error: { code: err.code, message: err.message, ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}) } };
  }
  return { ok: false, error: { code: 'INTERNAL', message: `the worker failed: ${err instanceof Error ? err.message : String(err)}` } };
}

/** The ApiError an error reply stands for (on the API node). */
export function replyError(e: unknown): ApiError {
  if (typeof e === 'object' && e !== null) {
    const r = e as Record<string, unknown>;
    const retryAfter = r['retryAfter'];
    if (isErrorCode(r['code']) && typeof r['message'] === 'string') {
      return new ApiError(r['code'], r['message'], typeof retryAfter === 'number' ? { retryAfter } : {});
    }
  }
  return new ApiError('INTERNAL', 'the worker sent a malformed error reply');
}
