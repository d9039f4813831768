/**
 * Maps a Sluice agent run's events to AG-UI events (docs/ag-ui.md has the table). Pure and
 * stateful: feed it the run's events in log order, it returns what to send for each. Whatever it
 * is fed (a log with a gap, a tool call whose first events were evicted), its output keeps the
 * rules of AG-UI's own verifier (@ag-ui/client `verifyEvents`): RUN_STARTED first, content only
 * inside a started message, tool calls started before their args and ended once, steps balanced,
 * everything closed before RUN_FINISHED, and nothing after RUN_FINISHED or RUN_ERROR.
 *
 * `reopen()` is what a resumed stream starts with: RUN_STARTED again (a new stream is a new
 * observable for an AG-UI client, so its verifier starts afresh) and a START for every step,
 * message and tool call the earlier events left open, under the same ids.
 */
import {
  assertNever,
  type AgentEndEvent,
  type AgentEvent,
  type ToolEndEvent,
  type ToolOutputDeltaEvent,
  type ToolProgressEvent,
  type ToolResultEvent,
} from '@sluice/protocol';
import type { AGUICustomName, AGUIEvent, AGUIRunFinished, AGUIToolCallStart } from './agui-events.js';

/** The ids an AG-UI stream names its run by: the Sluice session (thread) and agent run. */
export interface AGUIRunIDs {
  threadID: string;
  runID: string;
}

/** Where one tool call is: its args streaming (START sent), running (END sent), or answered (RESULT sent). */
type ToolCallPhase = 'args' | 'running' | 'done';

interface ToolCallState {
  name: string;
  phase: ToolCallPhase;
  parentMessageID: string | null;
  /** True once a non-empty TOOL_CALL_ARGS went out. */
  argsSent: boolean;
}

/** The id of the text message a turn opens (`k` counts messages within the turn from 1). */
export function messageIDOf(runID: string, turn: number, k: number): string {
  return k === 1 ? `${runID}-turn${turn}` : `${runID}-turn${turn}-${k}`;
}

/** The id of the tool message TOOL_CALL_RESULT mints for a tool call. */
export function toolResultMessageIDOf(runID: string, toolID: string): string {
  return `${runID}-${toolID}-result`;
}

/** The AG-UI step name of a Sluice turn. */
export function stepNameOf(turn: number): string {
  return `turn ${turn}`;
}

/** Turns Sluice agent events into AG-UI events, one run at a time (see the module comment). */
export class AGUIMapper {
  private started = false;
  /** The RUN_FINISHED or RUN_ERROR sent; nothing is mapped after it. */
  private terminal: AGUIEvent | null = null;
  private model: string | null = null;
  private turn = 0;
  private messagesInTurn = 0;
  private step: string | null = null;
  /** The open text message, if any. */
  private message: string | null = null;
  /** The turn's latest text message: the parent of the tool calls after it. */
  private turnMessage: string | null = null;
  private readonly tools = new Map<string, ToolCallState>();
  /** `ts` of the latest event mapped: the timestamp of what `reopen()` makes up. */
  private lastTS = 0;

  constructor(private readonly ids: AGUIRunIDs) {}

  /** True once RUN_FINISHED or RUN_ERROR has been produced. */
  get finished(): boolean {
    return this.terminal !== null;
  }

  /** The AG-UI events for one Sluice event, in order (often none, sometimes several). */
  map(event: AgentEvent): AGUIEvent[] {
    if (this.terminal !== null) return [];
    const ts = event.ts;
    this.lastTS = ts;
    const out: AGUIEvent[] = [];
    if (!this.started && event.type !== 'gap') {
      this.started = true;
      out.push({ type: 'RUN_STARTED', threadId: this.ids.threadID, runId: this.ids.runID, timestamp: ts });
    }
    switch (event.type) {
      case 'agent_start':
        this.model = event.model;
        break;
      case 'turn_start':
        this.closeTurn(out, ts);
        this.turn = event.turn;
        this.messagesInTurn = 0;
        this.turnMessage = null;
        this.step = stepNameOf(event.turn);
        out.push({ type: 'STEP_STARTED', stepName: this.step, timestamp: ts });
        break;
      case 'text_delta':
        // AG-UI's schema before 1.0 refused an empty delta, and an empty one says nothing.
        if (event.text === '') break;
        if (this.message === null) {
          this.messagesInTurn += 1;
          this.message = messageIDOf(this.ids.runID, this.turn, this.messagesInTurn);
          this.turnMessage = this.message;
          out.push({ type: 'TEXT_MESSAGE_START', messageId: this.message, role: 'assistant', timestamp: ts });
        }
        out.push({ type: 'TEXT_MESSAGE_CONTENT', messageId: this.message, delta: event.text, timestamp: ts });
        break;
      case 'tool_input_delta': {
        this.closeMessage(out, ts);
        const call = this.openToolCall(out, event.tool_id, event.tool_name, ts);
        if (call.phase === 'args' && event.text !== '') {
          call.argsSent = true;
          out.push({ type: 'TOOL_CALL_ARGS', toolCallId: event.tool_id, delta: event.text, timestamp: ts });
        }
        break;
      }
      case 'tool_start': {
        this.closeMessage(out, ts);
        const call = this.openToolCall(out, event.tool_id, event.tool_name, ts);
        // No delta came (or none survived in the log): the parsed input stands for the args.
        if (call.phase === 'args' && !call.argsSent) {
          call.argsSent = true;
          out.push({ type: 'TOOL_CALL_ARGS', toolCallId: event.tool_id, delta: JSON.stringify(event.input), timestamp: ts });
        }
        this.endToolCall(out, event.tool_id, call, ts);
        break;
      }
      case 'tool_output_delta':
        out.push(custom('sluice.tool_output_delta', event, ts));
        break;
      case 'tool_progress':
        out.push(custom('sluice.tool_progress', event, ts));
        break;
      case 'tool_result':
        out.push(custom('sluice.tool_result', event, ts));
        break;
      case 'tool_end': {
        this.closeMessage(out, ts);
        const call = this.openToolCall(out, event.tool_id, event.tool_name, ts);
        this.endToolCall(out, event.tool_id, call, ts);
        if (call.phase === 'done') break;
        call.phase = 'done';
        out.push({
          type: 'TOOL_CALL_RESULT',
          messageId: toolResultMessageIDOf(this.ids.runID, event.tool_id),
          toolCallId: event.tool_id,
          content: event.tool_output,
          role: 'tool',
          timestamp: ts,
        });
        const { tool_output: _shown, ...rest } = event;
        out.push(custom('sluice.tool_end', rest, ts));
        break;
      }
      case 'turn_end':
        this.closeTurn(out, ts);
        break;
      case 'gap':
        break;
      case 'error':
        this.closeTurn(out, ts);
        this.finish(out, { type: 'RUN_ERROR', message: event.error, code: event.code, timestamp: ts });
        break;
      case 'end':
        this.closeTurn(out, ts);
        this.finish(out, this.terminalOf(event));
        break;
      default:
        assertNever(event, 'agent event');
    }
    return out;
  }

  /**
   * What a resumed stream sends before the events it resumes at: RUN_STARTED, then a START for
   * the open step, text message and tool calls (same ids; content already sent is not repeated).
   * A run already over sends its RUN_FINISHED / RUN_ERROR again, so the stream is whole. Nothing
   * when nothing was mapped yet (the first event mapped starts the run).
   */
  reopen(): AGUIEvent[] {
    if (!this.started) return [];
    const ts = this.lastTS;
    const out: AGUIEvent[] = [{ type: 'RUN_STARTED', threadId: this.ids.threadID, runId: this.ids.runID, timestamp: ts }];
    if (this.terminal !== null) {
      out.push(this.terminal);
      return out;
    }
    if (this.step !== null) out.push({ type: 'STEP_STARTED', stepName: this.step, timestamp: ts });
    if (this.message !== null) out.push({ type: 'TEXT_MESSAGE_START', messageId: this.message, role: 'assistant', timestamp: ts });
    for (const [id, call] of this.tools) {
      if (call.phase === 'args') out.push(toolCallStart(id, call, ts));
    }
    return out;
  }

  private terminalOf(event: AgentEndEvent): AGUIEvent {
    const finished: AGUIRunFinished = {
      type: 'RUN_FINISHED',
      threadId: this.ids.threadID,
      runId: this.ids.runID,
      result: { reason: event.reason, text: event.text, total_tokens: event.total_tokens, turns: event.turns },
      usage: [
        {
          ...(this.model === null ? {} : { model: this.model }),
          inputTokens: event.usage.prompt_tokens,
          outputTokens: event.usage.completion_tokens,
          totalTokens: event.usage.total_tokens,
        },
      ],
      timestamp: event.ts,
    };
    switch (event.reason) {
      case 'completed':
      case 'max_turns':
      case 'length':
        return finished;
      case 'cancelled':
        // AG-UI 1.0's own word for a run stopped by its caller that did not fail.
        return { ...finished, outcome: { type: 'cancelled' } };
      case 'error':
        // An `error` event normally came first and ended the stream; this is a log that lost it.
        return { type: 'RUN_ERROR', message: 'the agent run failed', code: 'INTERNAL', timestamp: event.ts };
      default:
        return assertNever(event.reason, 'end reason');
    }
  }

  private finish(out: AGUIEvent[], terminal: AGUIEvent): void {
    this.terminal = terminal;
    out.push(terminal);
  }

  /** Returns the tool call's state, sending its TOOL_CALL_START first if it had none. */
  private openToolCall(out: AGUIEvent[], id: string, name: string, ts: number): ToolCallState {
    let call = this.tools.get(id);
    if (call === undefined) {
      call = { name, phase: 'args', parentMessageID: this.turnMessage, argsSent: false };
      this.tools.set(id, call);
      out.push(toolCallStart(id, call, ts));
    }
    return call;
  }

  private endToolCall(out: AGUIEvent[], id: string, call: ToolCallState, ts: number): void {
    if (call.phase !== 'args') return;
    call.phase = 'running';
    out.push({ type: 'TOOL_CALL_END', toolCallId: id, timestamp: ts });
  }

  private closeMessage(out: AGUIEvent[], ts: number): void {
    if (this.message === null) return;
    out.push({ type: 'TEXT_MESSAGE_END', messageId: this.message, timestamp: ts });
    this.message = null;
  }

  /** Closes whatever the turn left open: its message, tool calls still streaming args, its step. */
  private closeTurn(out: AGUIEvent[], ts: number): void {
    this.closeMessage(out, ts);
    for (const [id, call] of this.tools) this.endToolCall(out, id, call, ts);
    if (this.step !== null) {
      out.push({ type: 'STEP_FINISHED', stepName: this.step, timestamp: ts });
      this.step = null;
    }
  }
}

function toolCallStart(id: string, call: ToolCallState, ts: number): AGUIToolCallStart {
  return {
    type: 'TOOL_CALL_START',
    toolCallId: id,
    toolCallName: call.name,
    ...(call.parentMessageID === null ? {} : { parentMessageId: call.parentMessageID }),
    timestamp: ts,
  };
}

/** A CUSTOM event carrying a Sluice event's own fields (snake_case, `seq` included, `type` left out). */
function custom(name: AGUICustomName, event: ToolOutputDeltaEvent | ToolProgressEvent | ToolResultEvent | Omit<ToolEndEvent, 'tool_output'>, ts: number): AGUIEvent {
  const { type: _type, ...value } = event;
  return { type: 'CUSTOM', name, value: { ...value }, timestamp: ts };
}
