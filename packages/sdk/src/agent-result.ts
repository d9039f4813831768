/**
 * The result of an agent run: the fold of its event log (protocol's `foldAgentEvent`, applied as
 * the events stream in) in camelCase. How the run ended is data, not an exception: `reason`
 * says `completed`, `max_turns`, `length`, `cancelled` or `error` (then `error` says why).
 */
import type { AgentEndReason, AgentRunResult as WireAgentResult, AgentToolCall as WireToolCall, ToolEndReason } from '@sluice/protocol';
import { toAgentUsage, type AgentUsage } from './agent-events.js';

/** One tool call of a run. */
export interface AgentToolCall {
  toolId: string;
  toolName: string;
  /** The parsed arguments. */
  input: Record<string, unknown>;
  /** What the model was told. */
  toolOutput: string;
  exitCode: number | null;
  /** How the call ended (null if the log stopped before its `tool_end`). */
  reason: ToolEndReason | null;
  /** The execution a `run_code` call made (`sluice.executions.get()` has its whole log). */
  executionId: string | null;
  /** The `result` data of its code (MIME type → value), in order. */
  results: Record<string, unknown>[];
}

/** Everything an agent run's log said. */
export interface AgentResult {
  runId: string;
  /** The final answer: the text of the last turn. */
  text: string;
  /** Why it ended (null only in a view of a run still going). */
  reason: AgentEndReason | null;
  turns: number;
  totalTokens: number;
  usage: AgentUsage;
  toolCalls: AgentToolCall[];
  /** The `error` event of a run that failed (`reason: "error"`). */
  error: { code: string; message: string } | null;
  /** Events the server's bounded log no longer held were skipped. */
  gap: boolean;
  /** `reason === "completed"`: the model answered. */
  completed: boolean;
  /** `reason === "cancelled"`. */
  cancelled: boolean;
}

/** Converts the wire's fold into an {@link AgentResult}. */
export function toAgentResult(fold: WireAgentResult, runId: string): AgentResult {
  return {
    runId: fold.run_id ?? runId,
    text: fold.text,
    reason: fold.reason,
    turns: fold.turns,
    totalTokens: fold.total_tokens,
    usage: toAgentUsage(fold.usage),
    toolCalls: fold.tool_calls.map(toAgentToolCall),
    error: fold.error,
    gap: fold.gap,
    completed: fold.reason === 'completed',
    cancelled: fold.reason === 'cancelled',
  };
}

function toAgentToolCall(c: WireToolCall): AgentToolCall {
  return {
    toolId: c.tool_id,
    toolName: c.tool_name,
    input: c.input,
    toolOutput: c.tool_output,
    exitCode: c.exit_code,
    reason: c.reason,
    executionId: c.execution_id,
    results: c.results,
  };
}
