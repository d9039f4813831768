/**
 * The event log of an agent run (docs/agents.md): an LLM conversation that writes and runs code
 * in a session. Same rules as an execution's log: `seq` 1..n, `ts`, resumable, one final event
 * (`end`). Every transport carries exactly these objects.
 */
import type { DoneReason, OutputStream } from './events.js';

/** The tools an agent run binds to its session. */
export const AGENT_TOOLS = ['run_code', 'read_file', 'write_file', 'list_files'] as const;
/** One of {@link AGENT_TOOLS}. */
export type AgentTool = (typeof AGENT_TOOLS)[number];

/**
 * Why an agent run ended: it answered (`completed`), ran out of turns (`max_turns`), the model
 * hit its output limit (`length`, an extension of the contract's list), was cancelled, or failed
 * (`error`, after an `error` event).
 */
export const AGENT_END_REASONS = ['completed', 'max_turns', 'length', 'cancelled', 'error'] as const;
/** One of {@link AGENT_END_REASONS}. */
export type AgentEndReason = (typeof AGENT_END_REASONS)[number];

/**
 * How a tool call ended: a `run_code` call ends like its execution (`exited`, `timeout`…); a
 * file tool `exited` (exit code 0) or failed with `error` (exit code 1); a call the model got
 * wrong (bad JSON, unknown tool, missing field) is `invalid` (exit code null) and never ran.
 */
export type ToolEndReason = DoneReason | 'invalid';

/** Token counts of one model call, or of a run so far. */
export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface AgentEventBase {
  /** 1, 2, 3… within the run, no gaps. */
  seq: number;
  /** Milliseconds since the Unix epoch. */
  ts: number;
}

/** The first event of every run. */
export interface AgentStartEvent extends AgentEventBase {
  type: 'agent_start';
  run_id: string;
  session_id: string;
  model: string;
}
/** A model call begins (turns count from 1). */
export interface TurnStartEvent extends AgentEventBase {
  type: 'turn_start';
  turn: number;
}
/** Text the model streamed. */
export interface TextDeltaEvent extends AgentEventBase {
  type: 'text_delta';
  text: string;
}
/** The model is writing a tool call: `text` is the next piece of its arguments' JSON. */
export interface ToolInputDeltaEvent extends AgentEventBase {
  type: 'tool_input_delta';
  tool_id: string;
  tool_name: string;
  text: string;
}
/** A tool call begins to run, with its parsed arguments. */
export interface ToolStartEvent extends AgentEventBase {
  type: 'tool_start';
  tool_id: string;
  tool_name: string;
  input: Record<string, unknown>;
}
/** Output of the code a `run_code` call runs, while it runs. */
export interface ToolOutputDeltaEvent extends AgentEventBase {
  type: 'tool_output_delta';
  tool_id: string;
  tool_name: string;
  stream: OutputStream;
  text: string;
  execution_id: string;
}
/** A `progress` event of the code a `run_code` call runs. */
export interface ToolProgressEvent extends AgentEventBase {
  type: 'tool_progress';
  tool_id: string;
  tool_name: string;
  execution_id: string;
  message?: string;
  percent?: number;
  data?: unknown;
}
/** A `result` event (a rich value) of the code a `run_code` call runs. */
export interface ToolResultEvent extends AgentEventBase {
  type: 'tool_result';
  tool_id: string;
  tool_name: string;
  execution_id: string;
  data: Record<string, unknown>;
}
/** A tool call finished; `tool_output` is what the model is told. */
export interface ToolEndEvent extends AgentEventBase {
  type: 'tool_end';
  tool_id: string;
  tool_name: string;
  tool_output: string;
  exit_code: number | null;
  reason: ToolEndReason;
  execution_id?: string;
}
/** A model call finished. */
export interface TurnEndEvent extends AgentEventBase {
  type: 'turn_end';
  turn: number;
  usage: TokenUsage;
  /** Tokens of the whole run so far. */
  total_tokens: number;
}
/** Sent to one reader whose requested range the bounded log no longer holds; `seq` equals `to_seq`. */
export interface AgentGapEvent extends AgentEventBase {
  type: 'gap';
  from_seq: number;
  to_seq: number;
}
/** The run failed (`LLM_UNAVAILABLE`, `LLM_ERROR`, `INTERNAL`…); `end` follows. */
export interface AgentErrorEvent extends AgentEventBase {
  type: 'error';
  error: string;
  code: string;
}
/** The last event of every run. */
export interface AgentEndEvent extends AgentEventBase {
  type: 'end';
  /** The final answer: the text of the last turn (so far, when cancelled). */
  text: string;
  total_tokens: number;
  /** Tokens of the whole run by kind (an extension). */
  usage: TokenUsage;
  turns: number;
  reason: AgentEndReason;
}

/** One entry of an agent run's event log. */
export type AgentEvent =
  | AgentStartEvent
  | TurnStartEvent
  | TextDeltaEvent
  | ToolInputDeltaEvent
  | ToolStartEvent
  | ToolOutputDeltaEvent
  | ToolProgressEvent
  | ToolResultEvent
  | ToolEndEvent
  | TurnEndEvent
  | AgentGapEvent
  | AgentErrorEvent
  | AgentEndEvent;

/** The `type` of an agent event. */
export type AgentEventType = AgentEvent['type'];

/** Every agent event type; useful for validating decoded input. */
export const AGENT_EVENT_TYPES = [
  'agent_start',
  'turn_start',
  'text_delta',
  'tool_input_delta',
  'tool_start',
  'tool_output_delta',
  'tool_progress',
  'tool_result',
  'tool_end',
  'turn_end',
  'gap',
  'error',
  'end',
] as const satisfies readonly AgentEventType[];

/** True for the type names of the agent union. */
export function isAgentEventType(value: unknown): value is AgentEventType {
  return typeof value === 'string' && (AGENT_EVENT_TYPES as readonly string[]).includes(value);
}

/** Where an agent run is: `running` until its `end` is in the log. */
export const AGENT_RUN_STATES = ['running', 'finished'] as const;
/** One of {@link AGENT_RUN_STATES}. */
export type AgentRunState = (typeof AGENT_RUN_STATES)[number];
