/**
 * Typed errors of the SDK, rebuilt from the wire's error table (`ErrorCode` → status in
 * `@sluice/protocol`) by one factory. A program that exits non-zero, times out or is cancelled
 * is not an error: those are results (`RunResult.reason`), see run-result.ts.
 */
import { ERROR_STATUS, isErrorCode, type ErrorCode } from '@sluice/protocol';

/** Codes of errors that did not come from the server: the network, and client-side timeouts. */
export const ClientErrorCode = {
  CONNECTION_ERROR: 'CONNECTION_ERROR',
  TIMEOUT: 'TIMEOUT',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every `code` a {@link SluiceError} may carry. */
export type SluiceErrorCode = ErrorCode | ClientErrorCode;

/** Where an error came from, besides its message. */
export interface SluiceErrorDetails {
  /** HTTP status of the answer (the table's status for errors that arrived another way). */
  status?: number;
  /**
   * Names the request: the server's `Request-Id` / `X-Request-Id` answer header when it sends one,
   * otherwise the `X-Request-Id` the SDK sent (or, over WebSocket, the `execute`'s `request_id`).
   */
  requestID?: string;
  /** Seconds to wait before retrying (`Retry-After`), when the server said. */
  retryAfter?: number;
  cause?: unknown;
}

/** Base class of every error the SDK throws on purpose; `code` says which kind it is. */
export class SluiceError extends Error {
  override name = 'SluiceError';
  readonly code: SluiceErrorCode;
  /** HTTP status, or undefined for errors that never reached the server. */
  readonly status: number | undefined;
  /** The id of the failed request (see {@link SluiceErrorDetails.requestID}); undefined for errors not tied to one. */
  readonly requestID: string | undefined;

  constructor(code: SluiceErrorCode, message: string, details: SluiceErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status ?? (isErrorCode(code) ? ERROR_STATUS[code] : undefined);
    this.requestID = details.requestID;
  }
}

/** 400: the request was malformed; the message names the field. */
export class InvalidRequestError extends SluiceError {
  override name = 'InvalidRequestError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('INVALID_REQUEST', message, details);
  }
}
/** 401: API keys are configured and the key is missing or wrong. */
export class UnauthorizedError extends SluiceError {
  override name = 'UnauthorizedError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('UNAUTHORIZED', message, details);
  }
}
/** 403: not allowed (network access the server does not grant, a link or FIFO in the workspace). */
export class ForbiddenError extends SluiceError {
  override name = 'ForbiddenError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('FORBIDDEN', message, details);
  }
}
/** 404: no such session, execution, file or route (another tenant's look the same). */
export class NotFoundError extends SluiceError {
  override name = 'NotFoundError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('NOT_FOUND', message, details);
  }
}
/** 409: the session's queue is full. */
export class SessionBusyError extends SluiceError {
  override name = 'SessionBusyError';
  readonly retryAfter: number | undefined;
  constructor(message: string, details: SluiceErrorDetails = {}) {
    super('SESSION_BUSY', message, details);
    this.retryAfter = details.retryAfter;
  }
}
/** 413: a body, an upload or the workspace is over its limit. */
export class PayloadTooLargeError extends SluiceError {
  override name = 'PayloadTooLargeError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('PAYLOAD_TOO_LARGE', message, details);
  }
}
/** 422: a language this server cannot run. */
export class UnsupportedLanguageError extends SluiceError {
  override name = 'UnsupportedLanguageError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('UNSUPPORTED_LANGUAGE', message, details);
  }
}
/** 429: a cap is reached; `retryAfter` (seconds) says when to try again. */
export class RateLimitedError extends SluiceError {
  override name = 'RateLimitedError';
  readonly retryAfter: number | undefined;
  constructor(message: string, details: SluiceErrorDetails = {}) {
    super('RATE_LIMITED', message, details);
    this.retryAfter = details.retryAfter;
  }
}
/** 500: a server bug (or a malformed answer from it). */
export class InternalError extends SluiceError {
  override name = 'InternalError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('INTERNAL', message, details);
  }
}
/** 503: the sandbox cannot run code here, or the server is draining. */
export class SandboxUnavailableError extends SluiceError {
  override name = 'SandboxUnavailableError';
  readonly retryAfter: number | undefined;
  constructor(message: string, details: SluiceErrorDetails = {}) {
    super('SANDBOX_UNAVAILABLE', message, details);
    this.retryAfter = details.retryAfter;
  }
}
/** 502: the server's model endpoint failed before answering, or none is configured (agent runs). */
export class LLMUnavailableError extends SluiceError {
  override name = 'LLMUnavailableError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('LLM_UNAVAILABLE', message, details);
  }
}
/** 502: the model's stream failed after it began (an agent run's `error` event). */
export class LLMStreamError extends SluiceError {
  override name = 'LLMStreamError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('LLM_ERROR', message, details);
  }
}
/** The server could not be reached, or the connection failed and retries ran out. */
export class ConnectionError extends SluiceError {
  override name = 'ConnectionError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('CONNECTION_ERROR', message, details);
  }
}
/** A client-side timeout (`timeoutMs`) ran out before the server answered. */
export class TimeoutError extends SluiceError {
  override name = 'TimeoutError';
  constructor(message: string, details?: SluiceErrorDetails) {
    super('TIMEOUT', message, details);
  }
}

const CLASSES: Record<ErrorCode, new (message: string, details?: SluiceErrorDetails) => SluiceError> = {
  INVALID_REQUEST: InvalidRequestError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  NOT_FOUND: NotFoundError,
  SESSION_BUSY: SessionBusyError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  UNSUPPORTED_LANGUAGE: UnsupportedLanguageError,
  RATE_LIMITED: RateLimitedError,
  INTERNAL: InternalError,
  SANDBOX_UNAVAILABLE: SandboxUnavailableError,
  LLM_UNAVAILABLE: LLMUnavailableError,
  LLM_ERROR: LLMStreamError,
};

/** Codes that only a Sluice error body names: a bare 502 (a proxy's) says nothing about the model endpoint. */
const BODY_ONLY_CODES: readonly ErrorCode[] = ['LLM_UNAVAILABLE', 'LLM_ERROR'];

/** The code whose status this is (the table read backwards), or undefined. */
export function codeForStatus(status: number): ErrorCode | undefined {
  for (const [code, s] of Object.entries(ERROR_STATUS)) if (s === status && isErrorCode(code) && !BODY_ONLY_CODES.includes(code)) return code;
  return undefined;
}

/**
 * The one factory: the error class of `code`. A code outside the table (a newer server, a proxy)
 * falls back to the status's code, then to `INTERNAL` for 5xx and `INVALID_REQUEST` for 4xx;
 * the original code stays in the message.
 */
export function errorFromCode(code: string, message: string, details: SluiceErrorDetails = {}): SluiceError {
  if (isErrorCode(code)) return new CLASSES[code](message, details);
  const status = details.status;
  const fallback = (status === undefined ? undefined : codeForStatus(status)) ?? (status !== undefined && status < 500 ? 'INVALID_REQUEST' : 'INTERNAL');
  return new CLASSES[fallback](code === '' ? message : `${code}: ${message}`, details);
}

/** What the factory needs from a failed HTTP answer (a fetch `Response` has all of it). */
export interface ErrorResponse {
  status: number;
  statusText?: string;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/**
 * Builds the typed error of a non-2xx answer from its `{error: {code, message}}` body, falling
 * back to the status when the body is not Sluice's (a proxy's HTML page, an empty 502).
 * `sentRequestID` (the `X-Request-Id` sent) names the request when the answer does not.
 */
export async function errorFromResponse(res: ErrorResponse, what: string, sentRequestID?: string): Promise<SluiceError> {
  const details: SluiceErrorDetails = { status: res.status };
  const requestID = res.headers.get('request-id') ?? res.headers.get('x-request-id') ?? sentRequestID ?? null;
  if (requestID !== null) details.requestID = requestID;
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  if (retryAfter !== undefined) details.retryAfter = retryAfter;
  let body = '';
  try {
    body = await res.text();
  } catch {
    // The body is only the message; the status alone still says what happened.
  }
  const parsed = parseErrorBody(body);
  if (parsed) return errorFromCode(parsed.code, parsed.message, details);
  const code = codeForStatus(res.status);
  const shown = body.trim().slice(0, 200);
  const message = `${what}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${shown ? `: ${shown}` : ''}`;
  return errorFromCode(code ?? '', message, details);
}

/** `{error: {code, message}}` narrowed from text, or undefined. */
export function parseErrorBody(text: string): { code: string; message: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const error = (value as Record<string, unknown>)['error'];
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as Record<string, unknown>;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return { code, message };
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** True when `err` is the rejection of an aborted signal or fetch (a DOMException named AbortError). */
export function isAbortError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}
