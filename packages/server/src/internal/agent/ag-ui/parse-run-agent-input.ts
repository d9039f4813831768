/**
 * Validates AG-UI's `RunAgentInput` (the body of `POST /api/sessions/{id}/ag-ui`) and turns it
 * into a Sluice {@link AgentRequest}. The prompt is the text of the last `user` message: Sluice
 * keeps the conversation itself in the session, so the earlier messages a client sends back are
 * not replayed to the model. The client's `tools`, `context` and `state` are accepted and not
 * used (the model gets the session's tools); Sluice's own options ride in `forwardedProps`.
 */
import {
  AGENT_REQUEST_KEYS,
  MAX_PROMPT_CHARS,
  describeValue,
  parseAgentRequest,
  type AgentRequest,
  type Validated,
} from '@sluice/protocol';

/** The `forwardedProps` keys Sluice reads: an agent request's options (every field but `prompt`). */
export const FORWARDED_AGENT_KEYS: readonly string[] = AGENT_REQUEST_KEYS.filter((k) => k !== 'prompt');

type Failure = { ok: false; code: 'INVALID_REQUEST'; message: string };

function invalid(field: string, expected: string, got: unknown): Failure {
  return { ok: false, code: 'INVALID_REQUEST', message: `${field}: expected ${expected}, got ${describeValue(got)}` };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The text of a message's `content`: a string as it is, or the `text` parts of a list of content
 * parts joined by blank lines (parts of other kinds, an image say, are skipped); null when the
 * content is neither.
 */
function textOf(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  const texts: string[] = [];
  for (const part of content) {
    if (isObject(part) && part['type'] === 'text' && typeof part['text'] === 'string') texts.push(part['text']);
  }
  return texts.join('\n\n');
}

/** Validates a `RunAgentInput` body (see the module comment). */
export function parseRunAgentInput(body: unknown): Validated<AgentRequest> {
  if (!isObject(body)) return invalid('request body', 'an AG-UI RunAgentInput (a JSON object)', body);
  for (const field of ['threadId', 'runId', 'parentRunId', 'protocolVersion'] as const) {
    const v = body[field];
    if (v !== undefined && typeof v !== 'string') return invalid(field, 'a string', v);
  }
  for (const field of ['tools', 'context'] as const) {
    const v = body[field];
    if (v !== undefined && !Array.isArray(v)) return invalid(field, 'an array', v);
  }
  const messages = body['messages'];
  if (!Array.isArray(messages)) return invalid('messages', 'an array of AG-UI messages (it is required)', messages);

  // Only the last user message (the prompt) and the last system one are read: the rest is history.
  let user: { i: number; content: unknown } | null = null;
  let sys: { i: number; content: unknown } | null = null;
  for (const [i, message] of messages.entries()) {
    if (!isObject(message)) return invalid(`messages[${i}]`, 'a message object', message);
    const role = message['role'];
    if (typeof role !== 'string') return invalid(`messages[${i}].role`, 'a string', role);
    if (role === 'user') user = { i, content: message['content'] };
    else if (role === 'system' || role === 'developer') sys = { i, content: message['content'] };
  }
  if (user === null) return invalid('messages', 'at least one message with role "user" (its content is the prompt)', messages);
  const prompt = textOf(user.content);
  if (prompt === null) return invalid(`messages[${user.i}].content`, 'a string or a list of content parts', user.content);
  if (prompt.trim() === '') return invalid(`messages[${user.i}].content`, 'the prompt: text that is not blank', user.content);
  if (prompt.length > MAX_PROMPT_CHARS) return invalid(`messages[${user.i}].content`, `the prompt: at most ${MAX_PROMPT_CHARS} characters`, `${prompt.length} characters`);
  let system: string | undefined;
  if (sys !== null) {
    const text = textOf(sys.content);
    if (text === null) return invalid(`messages[${sys.i}].content`, 'a string or a list of content parts', sys.content);
    if (text.length > MAX_PROMPT_CHARS) return invalid(`messages[${sys.i}].content`, `a system prompt of at most ${MAX_PROMPT_CHARS} characters`, `${text.length} characters`);
    if (text.trim() !== '') system = text;
  }

  const forwarded = body['forwardedProps'];
  if (forwarded !== undefined && forwarded !== null && !isObject(forwarded)) return invalid('forwardedProps', 'an object', forwarded);
  // Only Sluice's keys are read: a front end (CopilotKit…) may forward props of its own.
  const request: Record<string, unknown> = { prompt };
  if (system !== undefined) request['system'] = system;
  for (const key of FORWARDED_AGENT_KEYS) {
    const v = isObject(forwarded) ? forwarded[key] : undefined;
    if (v !== undefined) request[key] = v;
  }
  const checked = parseAgentRequest(request);
  if (!checked.ok) return { ...checked, message: `forwardedProps.${checked.message}` };
  return checked;
}
