/** The one error type routes throw; the HTTP layer turns it into `{error: {code, message}}`. */
import { ERROR_STATUS, type ErrorCode } from '@sluice/protocol';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  readonly retryAfter: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: { retryAfter?: number } = {},
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
    this.retryAfter = opts.retryAfter;
  }
}
