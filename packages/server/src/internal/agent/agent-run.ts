/**
 * One agent run: a conversation with the model that writes and runs code in a session. The
 * model's reply streams in as `text_delta` and `tool_input_delta` events; each tool call it
 * makes runs (live `tool_output_delta`…, then `tool_end`), and its result goes back to the model
 * with the call's id, turn after turn, until the model answers without calling a tool, the turns
 * run out, its output is cut (`length`), the run is cancelled, or something fails. `end` is
 * appended exactly once, last, after any running tool's processes are gone.
 *
 * The conversation is the session's (shared between its runs, one run at a time): it is left
 * well-formed whatever happens, so the next prompt can continue it (every tool call answered,
 * a cut or cancelled reply kept only as text).
 */
import type { AgentEndReason, AgentEvent, AgentRunState, AgentTool, TokenUsage } from '@sluice/protocol';
import { EventLog, type NewEvent } from '../execution/event-log.js';
import { checkToolCall, chatTools } from './agent-tools.js';
import type { ChatDelta, FinishReason } from './llm/chat-delta.js';
import type { ChatMessage, ChatToolCall } from './llm/chat-request.js';
import type { StreamChatOptions } from './llm/chat-stream.js';
import { LLMError } from './llm/llm-error.js';
import { ToolCallAccumulator, type AssembledToolCall } from './llm/tool-call-accumulator.js';
import type { ToolHost, ToolOutcome } from './session-tools.js';

/** Streams one chat completion (streamChat, or a test's script). */
export type ChatFn = (options: StreamChatOptions, signal: AbortSignal) => AsyncIterable<ChatDelta>;

export interface AgentRunInit {
  id: string;
  sessionID: string;
  owner: string | null;
  prompt: string;
  /** The system prompt of a new conversation. */
  system: string;
  model: string;
  maxTurns: number;
  tools: AgentTool[];
  /** The languages `run_code` accepts, and its default. */
  languages: string[];
  defaultLanguage: string;
  /** The session's conversation, continued and extended in place. */
  conversation: ChatMessage[];
  llm: Omit<StreamChatOptions, 'model' | 'messages' | 'tools'>;
  chat: ChatFn;
  toolHost: ToolHost;
  maxLogBytes: number;
}

export class AgentRun {
  readonly id: string;
  readonly sessionID: string;
  readonly owner: string | null;
  readonly model: string;
  readonly maxTurns: number;
  readonly tools: AgentTool[];
  readonly log: EventLog<AgentEvent>;
  readonly createdAt = Date.now();
  finishedAt: number | null = null;
  /** Resolves when `end` has been appended. */
  readonly finished: Promise<void>;
  /** The end reason once finished; and the tokens used (for metrics). */
  endReason: AgentEndReason | null = null;
  readonly usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

  private readonly abort = new AbortController();
  private cancelled = false;
  private turn = 0;
  /** The text of the turn in progress (the final answer once the model stops). */
  private turnText = '';
  private resolveFinished!: () => void;

  constructor(private readonly init: AgentRunInit) {
    this.id = init.id;
    this.sessionID = init.sessionID;
    this.owner = init.owner;
    this.model = init.model;
    this.maxTurns = init.maxTurns;
    this.tools = init.tools;
    // A flood of a tool's progress or results sheds those first, never the model's words or the output.
    this.log = new EventLog<AgentEvent>(init.maxLogBytes, { progress: 'tool_progress', result: 'tool_result' });
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Model calls made so far. */
  get turns(): number {
    return this.turn;
  }

  get state(): AgentRunState {
    return this.endReason === null ? 'running' : 'finished';
  }

  /** Stops the model call and any running tool (its whole process tree); idempotent. */
  cancel(): void {
    if (this.endReason !== null || this.cancelled) return;
    this.cancelled = true;
    this.abort.abort(new Error('the agent run was cancelled'));
  }

  /** Runs the loop to its end; never rejects (a failure becomes `error` then `end`). */
  async run(): Promise<void> {
    this.log.append({ type: 'agent_start', run_id: this.id, session_id: this.sessionID, model: this.model });
    const conv = this.init.conversation;
    if (conv.length === 0 && this.init.system !== '') conv.push({ role: 'system', content: this.init.system });
    conv.push({ role: 'user', content: this.init.prompt });
    let reason: AgentEndReason;
    try {
      reason = await this.loop();
    } catch (err) {
      if (this.cancelled) {
        reason = 'cancelled';
      } else {
        const code = err instanceof LLMError ? err.code : 'INTERNAL';
        let message = err instanceof LLMError ? err.message : `the agent run failed: ${(err as Error).message}`;
        // A refused request is most often a conversation past the model's context window.
        if (err instanceof LLMError && err.status === 400) {
          message += `; if the conversation has outgrown the model's context, forget it with DELETE /api/sessions/${this.sessionID}/agent`;
        }
        this.log.append({ type: 'error', error: message, code });
        reason = 'error';
      }
    }
    // The conversation always ends with the model's word, so the next prompt alternates
    // properly (strict chat templates refuse two user messages in a row).
    if (conv.at(-1)?.role !== 'assistant') conv.push({ role: 'assistant', content: noAnswer(reason) });
    this.endReason = reason;
    this.finishedAt = Date.now();
    this.log.append({
      type: 'end',
      text: this.turnText,
      total_tokens: this.usage.total_tokens,
      usage: { ...this.usage },
      turns: this.turn,
      reason,
    });
    this.log.close();
    this.resolveFinished();
  }

  private async loop(): Promise<AgentEndReason> {
    const signal = this.abort.signal;
    const conv = this.init.conversation;
    const tools = chatTools(this.tools, this.init.languages, this.init.defaultLanguage);
    while (this.turn < this.maxTurns) {
      if (this.cancelled) return 'cancelled';
      this.turn++;
      this.turnText = '';
      this.log.append({ type: 'turn_start', turn: this.turn });
      const reply = await this.callModel(tools, signal);
      if (reply.cancelled) return 'cancelled';
      if (reply.finish === 'length') {
        this.closeUnrun(reply.calls, 'invalid', "not run: the model's reply was cut off (length) before the call was complete");
      }
      const calls = reply.finish === 'length' ? [] : reply.calls;
      // A cut reply keeps its text only: half-written tool calls would leave calls unanswered.
      const assistant: ChatMessage = { role: 'assistant', content: this.turnText === '' && calls.length > 0 ? null : this.turnText };
      if (calls.length > 0) assistant.tool_calls = calls.map(toChatToolCall);
      conv.push(assistant);
      if (reply.finish === 'length') return 'length';
      if (calls.length === 0) return 'completed';
      for (const call of calls) {
        const outcome = await this.runTool(call, signal);
        conv.push({ role: 'tool', tool_call_id: call.id, content: outcome.output });
      }
      if (this.cancelled) return 'cancelled';
    }
    return 'max_turns';
  }

  /** One model call: streams its text and tool-call arguments into the log; `turn_end` follows it. */
  private async callModel(
    tools: ReturnType<typeof chatTools>,
    signal: AbortSignal,
  ): Promise<{ cancelled: boolean; finish: FinishReason | null; calls: AssembledToolCall[] }> {
    const acc = new ToolCallAccumulator();
    const usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let finish: FinishReason | null = null;
    let cancelled = false;
    let failed = false;
    try {
      const options: StreamChatOptions = { ...this.init.llm, model: this.model, messages: [...this.init.conversation], tools };
      for await (const delta of this.init.chat(options, signal)) {
        switch (delta.type) {
          case 'text':
            if (delta.text === '') break;
            this.turnText += delta.text;
            this.log.append({ type: 'text_delta', text: delta.text });
            break;
          case 'tool_call': {
            const u = acc.push(delta);
            if (u.started || u.fragment !== '') this.log.append({ type: 'tool_input_delta', tool_id: u.id, tool_name: u.name, text: u.fragment });
            break;
          }
          case 'usage':
            usage.prompt_tokens = delta.usage.prompt_tokens;
            usage.completion_tokens = delta.usage.completion_tokens;
            usage.total_tokens = delta.usage.total_tokens;
            break;
          case 'finish':
            finish = delta.reason;
            break;
          default: {
            const never: never = delta;
            throw new Error(`unexpected chat delta ${JSON.stringify(never)}`);
          }
        }
      }
    } catch (err) {
      if (!this.cancelled) {
        failed = true;
        throw err;
      }
      cancelled = true;
    } finally {
      // The turn's tokens count whatever happened (a cancelled stream may have sent none).
      this.usage.prompt_tokens += usage.prompt_tokens;
      this.usage.completion_tokens += usage.completion_tokens;
      this.usage.total_tokens += usage.total_tokens;
      this.log.append({ type: 'turn_end', turn: this.turn, usage, total_tokens: this.usage.total_tokens });
      // Calls the model had begun to write get their tool_start and tool_end all the same (after turn_end, as for calls that run).
      if (failed) this.closeUnrun(acc.finish(), 'error', 'not run: the model stream failed before the call was complete');
    }
    if (cancelled) {
      this.closeUnrun(acc.finish(), 'cancelled', 'not run: the agent run was cancelled while the model was writing the call');
      // What the model said before the cancel stays in the conversation, as text.
      if (this.turnText !== '') this.init.conversation.push({ role: 'assistant', content: this.turnText });
      return { cancelled, finish, calls: [] };
    }
    return { cancelled, finish, calls: acc.finish() };
  }

  /** Calls the model began but that will not run: each gets its `tool_start` and `tool_end` (they stay out of the conversation). */
  private closeUnrun(calls: AssembledToolCall[], reason: ToolOutcome['reason'], output: string): void {
    for (const call of calls) {
      this.log.append({ type: 'tool_start', tool_id: call.id, tool_name: call.name, input: call.parsed.ok ? call.parsed.value : {} });
      this.log.append({ type: 'tool_end', tool_id: call.id, tool_name: call.name, tool_output: `error: ${output}`, exit_code: null, reason });
    }
  }

  /** Every call the model made gets `tool_start` and `tool_end`, even one that is refused or never runs. */
  private async runTool(call: AssembledToolCall, signal: AbortSignal): Promise<ToolOutcome> {
    const checked = checkToolCall(call.name, call.parsed, this.tools);
    const input = call.parsed.ok ? call.parsed.value : {};
    this.log.append({ type: 'tool_start', tool_id: call.id, tool_name: call.name, input });
    let outcome: ToolOutcome;
    if (this.cancelled) {
      outcome = notRun(call);
    } else if (!checked.ok) {
      outcome = { output: `error: ${checked.error}`, exitCode: null, reason: 'invalid' };
    } else {
      const base = { tool_id: call.id, tool_name: call.name };
      try {
        outcome = await this.init.toolHost.run(
          checked.call,
          {
            output: (stream, text, executionID) => this.log.append({ type: 'tool_output_delta', ...base, stream, text, execution_id: executionID }),
            progress: (executionID, fields) => this.log.append({ type: 'tool_progress', ...base, execution_id: executionID, ...fields }),
            result: (executionID, data) => this.log.append({ type: 'tool_result', ...base, execution_id: executionID, data }),
          },
          signal,
        );
      } catch (err) {
        // The call is answered either way, so the conversation stays well-formed.
        outcome = this.cancelled ? notRun(call) : { output: `error: the tool failed: ${(err as Error).message}`, exitCode: null, reason: 'error' };
      }
    }
    const end: NewEvent<AgentEvent> & { type: 'tool_end' } = {
      type: 'tool_end',
      tool_id: call.id,
      tool_name: call.name,
      tool_output: outcome.output,
      exit_code: outcome.exitCode,
      reason: outcome.reason,
    };
    if (outcome.executionID !== undefined) end.execution_id = outcome.executionID;
    this.log.append(end);
    return outcome;
  }
}

function toChatToolCall(call: AssembledToolCall): ChatToolCall {
  // The model's arguments go back as it wrote them, except when they were not JSON: some
  // providers reject a history holding invalid arguments, so those become "{}".
  return { id: call.id, type: 'function', function: { name: call.name, arguments: call.parsed.ok ? call.arguments || '{}' : '{}' } };
}

/** What stands for the model's answer in the conversation when a run ended without one. */
function noAnswer(reason: AgentEndReason): string {
  switch (reason) {
    case 'cancelled':
      return '(no answer: the run was cancelled)';
    case 'error':
      return '(no answer: the model call failed)';
    case 'max_turns':
      return '(no answer: the run reached its turn limit)';
    case 'completed':
    case 'length':
      return '';
  }
}

/** The answer to a call the run never got to (it was cancelled first). */
function notRun(call: AssembledToolCall): ToolOutcome {
  return { output: `error: not run: the agent run was cancelled before ${call.name || 'this call'} started`, exitCode: null, reason: 'cancelled' };
}
