/** Folds an agent run's event log into its buffered-JSON answer (DESIGN "Agent runs", docs/agents.md). */
import type { AgentEndReason, AgentEvent, TokenUsage, ToolEndReason } from './agent-events.js';
import { assertNever } from './assert-never.js';

/** One tool call of a run, as the fold lists it. */
export interface AgentToolCall {
  tool_id: string;
  tool_name: string;
  /** The parsed arguments (empty until `tool_start`). */
  input: Record<string, unknown>;
  /** What the model was told (empty until `tool_end`). */
  tool_output: string;
  exit_code: number | null;
  /** Extensions: how the call ended (null while it runs) and the execution a `run_code` call made. */
  reason: ToolEndReason | null;
  execution_id: string | null;
  /** Extension: the `result` data of its code, in order. */
  results: Record<string, unknown>[];
}

/** The buffered answer of an agent run. */
export interface AgentRunResult {
  run_id: string | null;
  /** The final answer: the text of the last turn. */
  text: string;
  /** null until `end` arrived. */
  reason: AgentEndReason | null;
  turns: number;
  total_tokens: number;
  tool_calls: AgentToolCall[];
  /** Extensions: tokens by kind, the `error` event if the run failed, and missing events. */
  usage: TokenUsage;
  error: { code: string; message: string } | null;
  gap: boolean;
}

/** A fold with nothing in it yet. */
export function emptyAgentResult(): AgentRunResult {
  return {
    run_id: null,
    text: '',
    reason: null,
    turns: 0,
    total_tokens: 0,
    tool_calls: [],
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    error: null,
    gap: false,
  };
}

/** Applies one event to a fold in place (so a client can fold a live stream incrementally). */
export function foldAgentEvent(acc: AgentRunResult, ev: AgentEvent): AgentRunResult {
  switch (ev.type) {
    case 'agent_start':
      acc.run_id = ev.run_id;
      break;
    case 'turn_start':
      // Each turn's text replaces the last: the answer is what the final turn said.
      acc.turns = ev.turn;
      acc.text = '';
      break;
    case 'text_delta':
      acc.text += ev.text;
      break;
    case 'tool_input_delta':
      callOf(acc, ev.tool_id, ev.tool_name);
      break;
    case 'tool_start':
      callOf(acc, ev.tool_id, ev.tool_name).input = ev.input;
      break;
    case 'tool_output_delta':
      callOf(acc, ev.tool_id, ev.tool_name).execution_id = ev.execution_id;
      break;
    case 'tool_progress':
      break;
    case 'tool_result':
      callOf(acc, ev.tool_id, ev.tool_name).results.push(ev.data);
      break;
    case 'tool_end': {
      const call = callOf(acc, ev.tool_id, ev.tool_name);
      call.tool_output = ev.tool_output;
      call.exit_code = ev.exit_code;
      call.reason = ev.reason;
      if (ev.execution_id !== undefined) call.execution_id = ev.execution_id;
      break;
    }
    case 'turn_end':
      acc.turns = ev.turn;
      acc.usage.prompt_tokens += ev.usage.prompt_tokens;
      acc.usage.completion_tokens += ev.usage.completion_tokens;
      acc.usage.total_tokens += ev.usage.total_tokens;
      acc.total_tokens = ev.total_tokens;
      break;
    case 'gap':
      acc.gap = true;
      break;
    case 'error':
      acc.error = { code: ev.code, message: ev.error };
      break;
    case 'end':
      acc.text = ev.text;
      acc.reason = ev.reason;
      acc.turns = ev.turns;
      acc.total_tokens = ev.total_tokens;
      acc.usage = { ...ev.usage };
      break;
    default:
      assertNever(ev, 'agent event');
  }
  return acc;
}

/** Folds a whole log. */
export function foldAgentEvents(events: Iterable<AgentEvent>): AgentRunResult {
  const acc = emptyAgentResult();
  for (const ev of events) foldAgentEvent(acc, ev);
  return acc;
}

function callOf(acc: AgentRunResult, id: string, name: string): AgentToolCall {
  let call = acc.tool_calls.find((c) => c.tool_id === id);
  if (!call) {
    call = { tool_id: id, tool_name: name, input: {}, tool_output: '', exit_code: null, reason: null, execution_id: null, results: [] };
    acc.tool_calls.push(call);
  } else if (call.tool_name === '' && name !== '') {
    call.tool_name = name;
  }
  return call;
}
