/**
 * The one error type of the model client. Its codes are the contract's (DESIGN "Agent runs"):
 * `LLM_UNAVAILABLE` when the endpoint could not be used at all (not configured, refused, or
 * failing on every attempt before the first delta), `LLM_ERROR` when a stream failed after
 * deltas had been delivered. Messages never carry the API key (see {@link redactSecret}).
 */

/** The model client's error codes (not yet in protocol's `ErrorCode`; both map to 502). */
export const LLMErrorCode = {
  LLM_UNAVAILABLE: 'LLM_UNAVAILABLE',
  LLM_ERROR: 'LLM_ERROR',
} as const;
export type LLMErrorCode = (typeof LLMErrorCode)[keyof typeof LLMErrorCode];

/** A failed model call: `code` says whether any delta had been delivered, `status` is the upstream HTTP status if one was received. */
export class LLMError extends Error {
  override readonly name = 'LLMError';
  readonly status: number | undefined;

  constructor(
    readonly code: LLMErrorCode,
    message: string,
    opts: { status?: number } = {},
  ) {
    super(message);
    this.status = opts.status;
  }
}
