/**
 * @sluice/sdk: the TypeScript client of Sluice. Runs code in a session and streams what it
 * prints as typed events, over SSE or a shared WebSocket, resuming dropped connections so every
 * event arrives exactly once; files, sessions, executions; typed errors. Web-standard APIs only:
 * the same code runs in Node 20+ and in browsers. See docs/sdk.md.
 */
export { Sluice, type ServerInfo, type SluiceOptions } from './client.js';
export { Session, type RunOptions, type AttachOptions } from './session.js';
export { Sessions, type CreateSessionOptions } from './sessions.js';
export { Executions, type EventsOptions } from './executions.js';
export { SessionAgent, type AgentRunOptions, type AgentAttachOptions } from './session-agent.js';
export { AgentStream, type AgentStreamOptions, type AgentStreamCallbacks } from './agent-stream.js';
export type {
  AgentEndEvent,
  AgentErrorEvent,
  AgentGapEvent,
  AgentStartEvent,
  AgentStreamEvent,
  AgentTextDeltaEvent,
  AgentToolEndEvent,
  AgentToolInputDeltaEvent,
  AgentToolOutputDeltaEvent,
  AgentToolProgressEvent,
  AgentToolResultEvent,
  AgentToolStartEvent,
  AgentTurnEndEvent,
  AgentTurnStartEvent,
  AgentUsage,
} from './agent-events.js';
export { toWireAgentEvent } from './agent-events.js';
export type { AgentResult, AgentToolCall } from './agent-result.js';
export { SessionFiles, type FileRequestOptions, type WrittenFile } from './session-files.js';
export { ExecutionStream, type ExecutionStreamOptions, type StreamCallbacks } from './execution-stream.js';
export { isTimeout, toRunResult, type ProgressInfo, type RunResult } from './run-result.js';
export type { AgentRunInfo, CancelResult, ExecutionInfo, FileEntry, LanguageInfo, SessionInfo, SessionLimits } from './views.js';
export type { WebSocketConstructor, WebSocketLike } from './web-socket.js';
export type { Transport } from './internal/client-context.js';
export type { ReconnectOptions } from './internal/backoff.js';
export type { FetchFunction } from './internal/http-client.js';
export {
  ClientErrorCode,
  ConnectionError,
  errorFromCode,
  errorFromResponse,
  ForbiddenError,
  InternalError,
  InvalidRequestError,
  LLMStreamError,
  LLMUnavailableError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  SandboxUnavailableError,
  SessionBusyError,
  SluiceError,
  TimeoutError,
  UnauthorizedError,
  UnsupportedLanguageError,
  type SluiceErrorCode,
  type SluiceErrorDetails,
} from './errors.js';
// The wire types, re-exported so that callers need one import.
export {
  ErrorCode,
  type AgentEndReason,
  type AgentTool,
  type ToolEndReason,
  type DoneEvent,
  type DoneReason,
  type ErrorEvent,
  type ExecutionEvent,
  type EventType,
  type GapEvent,
  type Language,
  type Mode,
  type ProgressEvent,
  type ResultEvent,
  type StartEvent,
  type StderrEvent,
  type StdoutEvent,
  type TruncatedEvent,
} from '@sluice/protocol';
