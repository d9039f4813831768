/**
 * The validator at the edge of the model client: one SSE `data` payload of a streamed chat
 * completion (`chat.completion.chunk`), as `unknown`, narrowed to the {@link ChatDelta}s it
 * carries. Fields it does not use are ignored, so providers' extensions pass; a field it uses
 * with the wrong type makes the chunk invalid. Only the first choice (index 0) is read: the
 * client never asks for `n > 1`.
 */
import type { ChatDelta, ChatUsage, FinishReason, ToolCallDelta } from './chat-delta.js';

/** The deltas of a chunk, or why it could not be used (malformed, or an in-band `error` object). */
export type ParsedChatChunk = { ok: true; deltas: ChatDelta[] } | { ok: false; kind: 'invalid' | 'upstream_error'; message: string };

/** Parses one chunk (already JSON-decoded); never throws. */
export function parseChatChunk(chunk: unknown): ParsedChatChunk {
  if (!isRecord(chunk)) return invalid('a chunk is not a JSON object');
  // OpenRouter, vLLM and others report a failure after the headers as an in-band error object.
  if (chunk.error !== undefined && chunk.error !== null) return { ok: false, kind: 'upstream_error', message: errorMessage(chunk.error) };
  const deltas: ChatDelta[] = [];
  const choices = chunk.choices;
  if (choices !== undefined && choices !== null) {
    if (!Array.isArray(choices)) return invalid('`choices` is not an array');
    const choice: unknown = choices.find((c: unknown) => isRecord(c) && (c.index === undefined || c.index === 0));
    if (choice !== undefined) {
      const r = parseChoice(choice, deltas);
      if (r !== undefined) return invalid(r);
    }
  }
  const usage = chunk.usage;
  if (usage !== undefined && usage !== null) {
    // Best effort: counts a provider spells differently must not fail a reply already streaming.
    const u = parseUsage(usage);
    if (u !== undefined) deltas.push({ type: 'usage', usage: u });
  }
  return { ok: true, deltas };
}

/** Appends the choice's deltas; returns what is wrong with it, if anything. */
function parseChoice(choice: unknown, out: ChatDelta[]): string | undefined {
  if (!isRecord(choice)) return 'a choice is not an object';
  const delta = choice.delta;
  if (delta !== undefined && delta !== null) {
    if (!isRecord(delta)) return '`delta` is not an object';
    const content = delta.content;
    if (content !== undefined && content !== null) {
      if (typeof content !== 'string') return '`delta.content` is not a string';
      if (content.length > 0) out.push({ type: 'text', text: content });
    }
    const calls = delta.tool_calls;
    if (calls !== undefined && calls !== null) {
      if (!Array.isArray(calls)) return '`delta.tool_calls` is not an array';
      for (const call of calls) {
        const c = parseToolCall(call);
        if (typeof c === 'string') return c;
        out.push(c);
      }
    }
  }
  const finish = choice.finish_reason;
  if (finish !== undefined && finish !== null) {
    if (typeof finish !== 'string') return '`finish_reason` is not a string';
    out.push({ type: 'finish', reason: finishReason(finish), raw: finish });
  }
  return undefined;
}

function parseToolCall(call: unknown): ToolCallDelta | string {
  if (!isRecord(call)) return 'a tool call delta is not an object';
  const out: ToolCallDelta = { type: 'tool_call', arguments: '' };
  const { index, id } = call;
  if (index !== undefined && index !== null) {
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) return 'a tool call `index` is not a non-negative integer';
    out.index = index;
  }
  if (id !== undefined && id !== null) {
    if (typeof id !== 'string') return 'a tool call `id` is not a string';
    // Some servers send `"id": ""` on continuation chunks: that is no id.
    if (id.length > 0) out.id = id;
  }
  const fn = call.function;
  if (fn !== undefined && fn !== null) {
    if (!isRecord(fn)) return 'a tool call `function` is not an object';
    if (fn.name !== undefined && fn.name !== null) {
      if (typeof fn.name !== 'string') return 'a tool call `function.name` is not a string';
      if (fn.name.length > 0) out.name = fn.name;
    }
    if (fn.arguments !== undefined && fn.arguments !== null) {
      if (typeof fn.arguments !== 'string') return 'a tool call `function.arguments` is not a string';
      out.arguments = fn.arguments;
    }
  }
  return out;
}

function parseUsage(usage: unknown): ChatUsage | undefined {
  if (!isRecord(usage)) return undefined;
  const prompt = count(usage.prompt_tokens);
  const completion = count(usage.completion_tokens);
  if (prompt === undefined || completion === undefined) return undefined;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: count(usage.total_tokens) ?? prompt + completion };
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function finishReason(raw: string): FinishReason {
  switch (raw) {
    case 'stop':
    case 'tool_calls':
    case 'length':
    case 'content_filter':
      return raw;
    // The legacy single-function form is a tool call too (Azure and older servers still send it).
    case 'function_call':
      return 'tool_calls';
    default:
      return 'other';
  }
}

function errorMessage(error: unknown): string {
  if (typeof error === 'string') return error;
  if (isRecord(error) && typeof error.message === 'string') return error.message;
  return JSON.stringify(error);
}

function invalid(message: string): ParsedChatChunk {
  return { ok: false, kind: 'invalid', message };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
