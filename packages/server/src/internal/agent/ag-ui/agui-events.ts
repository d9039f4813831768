/**
 * The AG-UI events Sluice emits (docs/ag-ui.md): the subset of the AG-UI protocol's event union
 * (`@ag-ui/core` 1.0, events.ts) that an agent run maps to, each with only the fields Sluice
 * sets. Field names are AG-UI's own (camelCase), `type` its SCREAMING_SNAKE discriminator. Kept
 * here rather than imported so the server has no runtime dependency on the AG-UI packages; the
 * unit tests check every event against `@ag-ui/client`'s own schemas and verifier.
 */

/** AG-UI's token accounting, one entry per model (`TokenUsage` in @ag-ui/core). */
export interface AGUITokenUsage {
  /** Absent when the log no longer holds the run's `agent_start`. */
  model?: string;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

interface AGUIEventBase {
  /** Milliseconds since the Unix epoch: the `ts` of the Sluice event it maps. */
  timestamp: number;
}

/** The first event of every AG-UI stream (a resumed one too). */
export interface AGUIRunStarted extends AGUIEventBase {
  type: 'RUN_STARTED';
  threadId: string;
  runId: string;
}
/** The run ended without failing; `outcome` says when it was cancelled. */
export interface AGUIRunFinished extends AGUIEventBase {
  type: 'RUN_FINISHED';
  threadId: string;
  runId: string;
  result: AGUIRunResult;
  outcome?: { type: 'cancelled' };
  usage?: AGUITokenUsage[];
}
/** What RUN_FINISHED carries as `result`: the Sluice `end` event's own words. */
export interface AGUIRunResult {
  reason: string;
  text: string;
  total_tokens: number;
  turns: number;
}
/** The run failed; nothing follows it. */
export interface AGUIRunError extends AGUIEventBase {
  type: 'RUN_ERROR';
  message: string;
  code: string;
}
/** A model call (a Sluice turn) begins. */
export interface AGUIStepStarted extends AGUIEventBase {
  type: 'STEP_STARTED';
  stepName: string;
}
/** A model call ends. */
export interface AGUIStepFinished extends AGUIEventBase {
  type: 'STEP_FINISHED';
  stepName: string;
}
/** The assistant's text message of a turn opens. */
export interface AGUITextMessageStart extends AGUIEventBase {
  type: 'TEXT_MESSAGE_START';
  messageId: string;
  role: 'assistant';
}
/** More text of an open message (never empty). */
export interface AGUITextMessageContent extends AGUIEventBase {
  type: 'TEXT_MESSAGE_CONTENT';
  messageId: string;
  delta: string;
}
/** The message is complete. */
export interface AGUITextMessageEnd extends AGUIEventBase {
  type: 'TEXT_MESSAGE_END';
  messageId: string;
}
/** The model begins a tool call. */
export interface AGUIToolCallStart extends AGUIEventBase {
  type: 'TOOL_CALL_START';
  toolCallId: string;
  toolCallName: string;
  parentMessageId?: string;
}
/** More of the tool call's arguments (JSON text, in pieces). */
export interface AGUIToolCallArgs extends AGUIEventBase {
  type: 'TOOL_CALL_ARGS';
  toolCallId: string;
  delta: string;
}
/** The tool call's arguments are complete (the tool starts running). */
export interface AGUIToolCallEnd extends AGUIEventBase {
  type: 'TOOL_CALL_END';
  toolCallId: string;
}
/** What the tool returned: the text the model is given. */
export interface AGUIToolCallResult extends AGUIEventBase {
  type: 'TOOL_CALL_RESULT';
  messageId: string;
  toolCallId: string;
  content: string;
  role: 'tool';
}
/** A Sluice event AG-UI has no event for, by name (see {@link AGUI_CUSTOM_NAMES}). */
export interface AGUICustom extends AGUIEventBase {
  type: 'CUSTOM';
  name: AGUICustomName;
  value: Record<string, unknown>;
}

/** The CUSTOM event names Sluice uses: live tool output, progress, rich results, how a tool ended. */
export const AGUI_CUSTOM_NAMES = ['sluice.tool_output_delta', 'sluice.tool_progress', 'sluice.tool_result', 'sluice.tool_end'] as const;
/** One of {@link AGUI_CUSTOM_NAMES}. */
export type AGUICustomName = (typeof AGUI_CUSTOM_NAMES)[number];

/** One AG-UI event as Sluice sends it. */
export type AGUIEvent =
  | AGUIRunStarted
  | AGUIRunFinished
  | AGUIRunError
  | AGUIStepStarted
  | AGUIStepFinished
  | AGUITextMessageStart
  | AGUITextMessageContent
  | AGUITextMessageEnd
  | AGUIToolCallStart
  | AGUIToolCallArgs
  | AGUIToolCallEnd
  | AGUIToolCallResult
  | AGUICustom;

/** The `type` of an AG-UI event Sluice sends. */
export type AGUIEventType = AGUIEvent['type'];
