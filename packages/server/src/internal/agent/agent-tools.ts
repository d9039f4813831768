/**
 * The tools an agent run binds to its session, as the model sees them (JSON Schema function
 * tools) and as their calls are checked: a call the model got wrong (unknown tool, arguments
 * that are not a JSON object, a missing or mistyped field) is answered to the model as a tool
 * error, never a crash.
 */
import type { AgentTool } from '@sluice/protocol';
import type { ChatTool } from './llm/chat-request.js';
import type { ParsedArguments } from './llm/tool-call-accumulator.js';

/** A checked tool call. */
export type ToolCall =
  | { tool: 'run_code'; code: string; language: string | undefined }
  | { tool: 'read_file'; path: string }
  | { tool: 'write_file'; path: string; content: string }
  | { tool: 'list_files'; dir: string };

/** The function tools offered to the model, in `enabled` order; `languages` are those `run_code` accepts. */
export function chatTools(enabled: readonly AgentTool[], languages: readonly string[], defaultLanguage: string): ChatTool[] {
  return enabled.map((tool) => ({ type: 'function', function: describe(tool, languages, defaultLanguage) }));
}

function describe(tool: AgentTool, languages: readonly string[], defaultLanguage: string): ChatTool['function'] {
  switch (tool) {
    case 'run_code':
      return {
        name: tool,
        description:
          `Runs code in the session's sandbox (working directory /workspace, no network unless the session has it) and returns its stdout, stderr, exit code and rich results. ` +
          `Python and JavaScript run in a kernel: variables, imports and functions persist between calls, and a trailing expression is returned as a result. ` +
          `Default language: ${defaultLanguage}.`,
        parameters: {
          type: 'object',
          properties: {
            code: { type: 'string', description: 'The code to run.' },
            language: { type: 'string', enum: [...languages], description: `The language (default ${defaultLanguage}).` },
          },
          required: ['code'],
          additionalProperties: false,
        },
      };
    case 'read_file':
      return {
        name: tool,
        description: 'Reads a text file of the workspace (a path relative to /workspace).',
        parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false },
      };
    case 'write_file':
      return {
        name: tool,
        description: 'Writes a text file in the workspace (a path relative to /workspace), creating its directories; replaces an existing file.',
        parameters: {
          type: 'object',
          properties: { path: { type: 'string' }, content: { type: 'string' } },
          required: ['path', 'content'],
          additionalProperties: false,
        },
      };
    case 'list_files':
      return {
        name: tool,
        description: 'Lists a directory of the workspace (a path relative to /workspace; the workspace itself by default).',
        parameters: { type: 'object', properties: { dir: { type: 'string' } }, additionalProperties: false },
      };
  }
}

/** Checks one call the model made: the tool must be enabled and its arguments well-formed. */
export function checkToolCall(name: string, args: ParsedArguments, enabled: readonly AgentTool[]): { ok: true; call: ToolCall } | { ok: false; error: string } {
  const tool = enabled.find((t) => t === name);
  if (tool === undefined) {
    const shown = name === '' ? 'a call without a tool name' : `unknown tool ${JSON.stringify(name)}`;
    return { ok: false, error: `${shown}; the tools are ${enabled.join(', ')}` };
  }
  if (!args.ok) return { ok: false, error: `the arguments of ${tool} are not a JSON object: ${args.error}` };
  const a = args.value;
  const str = (field: string, required: boolean): string | undefined | Error => {
    const v = a[field];
    if (v === undefined) return required ? new Error(`${tool}.${field}: expected a string (it is required), got nothing`) : undefined;
    if (typeof v !== 'string') return new Error(`${tool}.${field}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const known: Record<AgentTool, string[]> = { run_code: ['code', 'language'], read_file: ['path'], write_file: ['path', 'content'], list_files: ['dir'] };
  for (const key of Object.keys(a)) {
    if (!known[tool].includes(key)) return { ok: false, error: `${tool}.${key}: unknown argument; expected ${known[tool].join(', ')}` };
  }
  const fail = (e: Error): { ok: false; error: string } => ({ ok: false, error: e.message });
  switch (tool) {
    case 'run_code': {
      const code = str('code', true);
      const language = str('language', false);
      if (code instanceof Error) return fail(code);
      if (language instanceof Error) return fail(language);
      return { ok: true, call: { tool, code: code ?? '', language } };
    }
    case 'read_file': {
      const path = str('path', true);
      if (path instanceof Error) return fail(path);
      return { ok: true, call: { tool, path: path ?? '' } };
    }
    case 'write_file': {
      const path = str('path', true);
      const content = str('content', true);
      if (path instanceof Error) return fail(path);
      if (content instanceof Error) return fail(content);
      return { ok: true, call: { tool, path: path ?? '', content: content ?? '' } };
    }
    case 'list_files': {
      const dir = str('dir', false);
      if (dir instanceof Error) return fail(dir);
      return { ok: true, call: { tool, dir: dir ?? '' } };
    }
  }
}
