/** Error codes of the wire contract and the one HTTP status each maps to (docs/api.md, "Errors"). */
export const ErrorCode = {
  INVALID_REQUEST: 'INVALID_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  SESSION_BUSY: 'SESSION_BUSY',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_LANGUAGE: 'UNSUPPORTED_LANGUAGE',
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL: 'INTERNAL',
  SANDBOX_UNAVAILABLE: 'SANDBOX_UNAVAILABLE',
  /** The model endpoint failed before answering, or none is configured. */
  LLM_UNAVAILABLE: 'LLM_UNAVAILABLE',
  /** The model's stream failed after it began (inside an agent run's stream). */
  LLM_ERROR: 'LLM_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The single table from error code to HTTP status. */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SESSION_BUSY: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_LANGUAGE: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  SANDBOX_UNAVAILABLE: 503,
  LLM_UNAVAILABLE: 502,
  LLM_ERROR: 502,
};

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** True when `value` is one of the contract's error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}
