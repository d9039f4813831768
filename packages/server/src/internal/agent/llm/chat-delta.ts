/**
 * What {@link streamChat} yields: the typed pieces of a streamed chat completion, one variant
 * per kind, in the order the endpoint sent them.
 */

/** Why the model stopped; `other` covers any value a provider invents. */
export type FinishReason = 'stop' | 'tool_calls' | 'length' | 'content_filter' | 'other';

/** Token counts of one completion. */
export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A fragment of one streamed tool call; `index` is missing with some providers, `id` and `name` usually come only in a call's first fragment. */
export interface ToolCallDelta {
  type: 'tool_call';
  index?: number;
  id?: string;
  name?: string;
  /** The next piece of the arguments' JSON text, possibly empty or cut anywhere. */
  arguments: string;
}

/** One piece of a streamed completion. */
export type ChatDelta =
  | { type: 'text'; text: string }
  | ToolCallDelta
  | { type: 'usage'; usage: ChatUsage }
  /** `raw` is the provider's own `finish_reason` string. */
  | { type: 'finish'; reason: FinishReason; raw: string };
