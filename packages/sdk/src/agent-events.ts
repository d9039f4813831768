/**
 * The events of an agent run as the SDK yields them: the wire's union (protocol's `AgentEvent`,
 * DESIGN "Agent runs") with its fields in camelCase and ids spelt `…Id`, as A3S Code's
 * `session.stream()` spells them, so loops written for it (`ev.text`, `ev.toolName`, `ev.toolId`,
 * `ev.toolOutput`, `ev.exitCode`, `ev.turn`, `ev.totalTokens`, `ev.error`) run unchanged.
 * `type` is the wire's, and a `switch` over it narrows each variant.
 */
import { assertNever, type AgentEndReason, type AgentEvent, type OutputStream, type TokenUsage, type ToolEndReason } from '@sluice/protocol';

/** Token counts of one model call, or of a run so far. */
export interface AgentUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

interface Envelope {
  /** 1, 2, 3… within the run, no gaps. */
  seq: number;
  /** Milliseconds since the Unix epoch. */
  ts: number;
}

/** The first event of every run. */
export interface AgentStartEvent extends Envelope {
  type: 'agent_start';
  runId: string;
  sessionId: string;
  model: string;
}
/** A model call begins (turns count from 1). */
export interface AgentTurnStartEvent extends Envelope {
  type: 'turn_start';
  turn: number;
}
/** Text the model streamed. */
export interface AgentTextDeltaEvent extends Envelope {
  type: 'text_delta';
  text: string;
}
/** The model is writing a tool call: `text` is the next piece of its arguments' JSON (the code, as it is written). */
export interface AgentToolInputDeltaEvent extends Envelope {
  type: 'tool_input_delta';
  toolId: string;
  toolName: string;
  text: string;
}
/** A tool call begins to run, with its parsed arguments (`run_code`: `{code, language?}`). */
export interface AgentToolStartEvent extends Envelope {
  type: 'tool_start';
  toolId: string;
  toolName: string;
  input: Record<string, unknown>;
}
/** Output of the code a `run_code` call runs, while it runs. */
export interface AgentToolOutputDeltaEvent extends Envelope {
  type: 'tool_output_delta';
  toolId: string;
  toolName: string;
  stream: OutputStream;
  text: string;
  executionId: string;
}
/** A `progress` event of the code a `run_code` call runs. */
export interface AgentToolProgressEvent extends Envelope {
  type: 'tool_progress';
  toolId: string;
  toolName: string;
  executionId: string;
  message?: string;
  percent?: number;
  data?: unknown;
}
/** A rich value (MIME type → value) of the code a `run_code` call runs. */
export interface AgentToolResultEvent extends Envelope {
  type: 'tool_result';
  toolId: string;
  toolName: string;
  executionId: string;
  data: Record<string, unknown>;
}
/** A tool call finished; `toolOutput` is what the model is told. */
export interface AgentToolEndEvent extends Envelope {
  type: 'tool_end';
  toolId: string;
  toolName: string;
  toolOutput: string;
  /** null when the call never ran (`reason: "invalid"`) or reported no status. */
  exitCode: number | null;
  reason: ToolEndReason;
  executionId?: string;
}
/** A model call finished. */
export interface AgentTurnEndEvent extends Envelope {
  type: 'turn_end';
  turn: number;
  usage: AgentUsage;
  /** Tokens of the whole run so far. */
  totalTokens: number;
}
/** The bounded log no longer held the events `fromSeq`..`toSeq` this reader asked for. */
export interface AgentGapEvent extends Envelope {
  type: 'gap';
  fromSeq: number;
  toSeq: number;
}
/** The run failed; `end` (reason `error`) follows. */
export interface AgentErrorEvent extends Envelope {
  type: 'error';
  /** The message. */
  error: string;
  /** `LLM_UNAVAILABLE`, `LLM_ERROR`, `INTERNAL`… */
  code: string;
}
/** The last event of every run. */
export interface AgentEndEvent extends Envelope {
  type: 'end';
  /** The final answer: the text of the last turn (so far, when cancelled). */
  text: string;
  totalTokens: number;
  usage: AgentUsage;
  turns: number;
  reason: AgentEndReason;
}

/** One event of an agent run, as `session.agent.stream()` yields it. */
export type AgentStreamEvent =
  | AgentStartEvent
  | AgentTurnStartEvent
  | AgentTextDeltaEvent
  | AgentToolInputDeltaEvent
  | AgentToolStartEvent
  | AgentToolOutputDeltaEvent
  | AgentToolProgressEvent
  | AgentToolResultEvent
  | AgentToolEndEvent
  | AgentTurnEndEvent
  | AgentGapEvent
  | AgentErrorEvent
  | AgentEndEvent;

/** Token counts in camelCase. */
export function toAgentUsage(u: TokenUsage): AgentUsage {
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, totalTokens: u.total_tokens };
}

/** The SDK's spelling of one wire event. */
export function toAgentStreamEvent(ev: AgentEvent): AgentStreamEvent {
  const { seq, ts } = ev;
  switch (ev.type) {
    case 'agent_start':
      return { type: ev.type, seq, ts, runId: ev.run_id, sessionId: ev.session_id, model: ev.model };
    case 'turn_start':
      return { type: ev.type, seq, ts, turn: ev.turn };
    case 'text_delta':
      return { type: ev.type, seq, ts, text: ev.text };
    case 'tool_input_delta':
      return { type: ev.type, seq, ts, toolId: ev.tool_id, toolName: ev.tool_name, text: ev.text };
    case 'tool_start':
      return { type: ev.type, seq, ts, toolId: ev.tool_id, toolName: ev.tool_name, input: ev.input };
    case 'tool_output_delta':
      return { type: ev.type, seq, ts, toolId: ev.tool_id, toolName: ev.tool_name, stream: ev.stream, text: ev.text, executionId: ev.execution_id };
    case 'tool_progress': {
      const out: AgentToolProgressEvent = { type: ev.type, seq, ts, toolId: ev.tool_id, toolName: ev.tool_name, executionId: ev.execution_id };
      if (ev.message !== undefined) out.message = ev.message;
      if (ev.percent !== undefined) out.percent = ev.percent;
      if ('data' in ev) out.data = ev.data;
      return out;
    }
    case 'tool_result':
      return { type: ev.type, seq, ts, toolId: ev.tool_id, toolName: ev.tool_name, executionId: ev.execution_id, data: ev.data };
    case 'tool_end': {
      const out: AgentToolEndEvent = { type: ev.type, seq, ts, toolId: ev.tool_id, toolName: ev.tool_name, toolOutput: ev.tool_output, exitCode: ev.exit_code, reason: ev.reason };
      if (ev.execution_id !== undefined) out.executionId = ev.execution_id;
      return out;
    }
    case 'turn_end':
      return { type: ev.type, seq, ts, turn: ev.turn, usage: toAgentUsage(ev.usage), totalTokens: ev.total_tokens };
    case 'gap':
      return { type: ev.type, seq, ts, fromSeq: ev.from_seq, toSeq: ev.to_seq };
    case 'error':
      return { type: ev.type, seq, ts, error: ev.error, code: ev.code };
    case 'end':
      return { type: ev.type, seq, ts, text: ev.text, totalTokens: ev.total_tokens, usage: toAgentUsage(ev.usage), turns: ev.turns, reason: ev.reason };
    default:
      return assertNever(ev, 'agent event');
  }
}

/** The wire's spelling of an SDK event (what `toAgentStreamEvent` read): for logs and NDJSON output. */
export function toWireAgentEvent(ev: AgentStreamEvent): AgentEvent {
  const { seq, ts } = ev;
  const usage = (u: AgentUsage): TokenUsage => ({ prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens });
  switch (ev.type) {
    case 'agent_start':
      return { type: ev.type, seq, ts, run_id: ev.runId, session_id: ev.sessionId, model: ev.model };
    case 'turn_start':
      return { type: ev.type, seq, ts, turn: ev.turn };
    case 'text_delta':
      return { type: ev.type, seq, ts, text: ev.text };
    case 'tool_input_delta':
      return { type: ev.type, seq, ts, tool_id: ev.toolId, tool_name: ev.toolName, text: ev.text };
    case 'tool_start':
      return { type: ev.type, seq, ts, tool_id: ev.toolId, tool_name: ev.toolName, input: ev.input };
    case 'tool_output_delta':
      return { type: ev.type, seq, ts, tool_id: ev.toolId, tool_name: ev.toolName, stream: ev.stream, text: ev.text, execution_id: ev.executionId };
    case 'tool_progress': {
      const out: AgentEvent & { type: 'tool_progress' } = { type: ev.type, seq, ts, tool_id: ev.toolId, tool_name: ev.toolName, execution_id: ev.executionId };
      if (ev.message !== undefined) out.message = ev.message;
      if (ev.percent !== undefined) out.percent = ev.percent;
      if ('data' in ev) out.data = ev.data;
      return out;
    }
    case 'tool_result':
      return { type: ev.type, seq, ts, tool_id: ev.toolId, tool_name: ev.toolName, execution_id: ev.executionId, data: ev.data };
    case 'tool_end': {
      const out: AgentEvent & { type: 'tool_end' } = { type: ev.type, seq, ts, tool_id: ev.toolId, tool_name: ev.toolName, tool_output: ev.toolOutput, exit_code: ev.exitCode, reason: ev.reason };
      if (ev.executionId !== undefined) out.execution_id = ev.executionId;
      return out;
    }
    case 'turn_end':
      return { type: ev.type, seq, ts, turn: ev.turn, usage: usage(ev.usage), total_tokens: ev.totalTokens };
    case 'gap':
      return { type: ev.type, seq, ts, from_seq: ev.fromSeq, to_seq: ev.toSeq };
    case 'error':
      return { type: ev.type, seq, ts, error: ev.error, code: ev.code };
    case 'end':
      return { type: ev.type, seq, ts, text: ev.text, total_tokens: ev.totalTokens, usage: usage(ev.usage), turns: ev.turns, reason: ev.reason };
    default:
      return assertNever(ev, 'agent event');
  }
}
