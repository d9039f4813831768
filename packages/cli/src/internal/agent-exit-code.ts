/**
 * `sluice agent`'s exit status (docs/cli.md "Agent runs"): 0 when the model answered, one status
 * per other way a run ends, and the client commands' usual statuses (exit-codes.ts) when the
 * server could not run it or the model endpoint failed.
 */
import { assertNever, type AgentEndReason } from '@sluice/protocol';
import { ExitCode, exitCodeForError } from './exit-codes.js';

export const AgentExitCode = {
  /** The run used up `--max-turns` before the model answered. */
  MAX_TURNS: 3,
  /** The model stopped at its output-length limit. */
  LENGTH: 4,
} as const;

/** The exit status of a run that ended with `reason`; `errorCode` is the code of its `error` event. */
export function exitCodeForAgentEnd(reason: AgentEndReason, errorCode: string | undefined): number {
  switch (reason) {
    case 'completed':
      return ExitCode.OK;
    case 'max_turns':
      return AgentExitCode.MAX_TURNS;
    case 'length':
      return AgentExitCode.LENGTH;
    case 'cancelled':
      return ExitCode.CANCELLED;
    case 'error':
      return errorCode === undefined ? ExitCode.SOFTWARE : exitCodeForError(errorCode);
    default:
      return assertNever(reason, 'end.reason');
  }
}
