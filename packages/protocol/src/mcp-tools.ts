/**
 * The tools Sluice offers over the Model Context Protocol (`/mcp`, `sluice mcp`): their
 * arguments' JSON Schemas (what `tools/list` shows) and validators beside them, as requests.ts
 * does for the HTTP API. A validator's failure names the tool and the field
 * (`run_code: code: expected a string (it is required), got nothing`); the server answers it as
 * a JSON-RPC InvalidParams error.
 */
import { assertNever } from './assert-never.js';
import type { JSONSchema, ObjectSchema } from './json-schema.js';
import { FieldReader, type Validated } from './requests.js';

/** Every MCP tool, in the order `tools/list` gives them. */
export const MCP_TOOLS = ['run_code', 'run_command', 'read_file', 'write_file', 'list_files', 'restart'] as const;
/** One of {@link MCP_TOOLS}. */
export type McpTool = (typeof MCP_TOOLS)[number];

/** A checked MCP tool call. */
export type McpToolCall =
  | { tool: 'run_code'; code: string; language?: string; timeout?: number }
  | { tool: 'run_command'; command: string; timeout?: number }
  | { tool: 'read_file'; path: string }
  | { tool: 'write_file'; path: string; content: string }
  | { tool: 'list_files'; dir?: string }
  | { tool: 'restart' };

const TIMEOUT_SCHEMA: JSONSchema = { type: 'number', exclusiveMinimum: 0, description: "Wall-time limit, seconds (the server caps it); default: the session's." };
const PATH_DESCRIPTION = 'A path in the workspace: relative to /workspace, or absolute under /workspace.';

/** JSON Schema of each tool's arguments (`inputSchema` in `tools/list`). */
export const MCP_TOOL_INPUT_SCHEMAS = {
  run_code: {
    type: 'object',
    properties: {
      code: { type: 'string', description: 'The code to run.' },
      language: { type: 'string', minLength: 1, description: "One of the server's languages (GET /api/languages); default: the session's (python)." },
      timeout: TIMEOUT_SCHEMA,
    },
    required: ['code'],
    additionalProperties: false,
  },
  run_command: {
    type: 'object',
    properties: {
      command: { type: 'string', description: 'A bash command line, run in a fresh sandbox process with /workspace as its directory.' },
      timeout: TIMEOUT_SCHEMA,
    },
    required: ['command'],
    additionalProperties: false,
  },
  read_file: {
    type: 'object',
    properties: { path: { type: 'string', minLength: 1, description: PATH_DESCRIPTION } },
    required: ['path'],
    additionalProperties: false,
  },
  write_file: {
    type: 'object',
    properties: {
      path: { type: 'string', minLength: 1, description: PATH_DESCRIPTION },
      content: { type: 'string', description: 'The whole text of the file (UTF-8); replaces an existing file.' },
    },
    required: ['path', 'content'],
    additionalProperties: false,
  },
  list_files: {
    type: 'object',
    properties: { dir: { type: 'string', description: `${PATH_DESCRIPTION} Default: the workspace itself.` } },
    additionalProperties: false,
  },
  restart: { type: 'object', properties: {}, additionalProperties: false },
} as const satisfies { [T in McpTool]: ObjectSchema<ArgumentName<T>> };

/** The argument names of one tool. */
type ArgumentName<T extends McpTool> = Exclude<keyof Extract<McpToolCall, { tool: T }>, 'tool'> & string;

/** What each tool does, for `tools/list`. */
export const MCP_TOOL_DESCRIPTIONS: Record<McpTool, string> = {
  run_code:
    "Runs code in the session's sandbox (working directory /workspace, no network unless the session has it) and returns stdout, stderr, the exit code and rich results (images, HTML, JSON). " +
    'Python and JavaScript run in a kernel: variables, imports and functions persist between calls, and a trailing expression is returned as a result. ' +
    'Output streams as progress notifications and log messages while it runs.',
  run_command: 'Runs a bash command line in a fresh sandbox process of the session (the workspace is shared with run_code) and returns stdout, stderr and the exit code.',
  read_file: 'Reads a text file of the session workspace (at most 1 MiB is read).',
  write_file: 'Writes a text file in the session workspace, creating its directories.',
  list_files: 'Lists a directory of the session workspace: one line per entry with its type and size.',
  restart: "Restarts the session's kernels: a running cell is cancelled and every variable and import is gone. Files stay.",
};

/** JSON Schema of the `structuredContent` of `run_code` and `run_command` (their `outputSchema`). */
export const MCP_RUN_OUTPUT_SCHEMA = {
  type: 'object',
  properties: {
    exit_code: { type: ['integer', 'null'], description: 'The exit code; null when the program was killed (timeout, cancel, a limit) or never ran.' },
    reason: { type: 'string', description: 'How the run ended: exited, timeout, cancelled, memory_limit, output_limit, cpu_limit, error…' },
    stdout: { type: 'string', description: 'Standard output (head and tail kept past the bound).' },
    stderr: { type: 'string', description: 'Standard error (head and tail kept past the bound).' },
    execution_id: { type: 'string', description: 'The execution: GET /api/executions/{id}.' },
    duration_ms: { type: ['integer', 'null'], description: 'Wall time of the run, milliseconds.' },
  },
  required: ['exit_code', 'reason', 'stdout', 'stderr', 'execution_id', 'duration_ms'],
  additionalProperties: false,
} as const satisfies ObjectSchema;

/** The `structuredContent` of a run tool's result. */
export interface McpRunOutput {
  exit_code: number | null;
  reason: string;
  stdout: string;
  stderr: string;
  execution_id: string;
  duration_ms: number | null;
}

/** Checks one `tools/call`: the tool must exist and its arguments fit its schema. */
export function parseMcpToolCall(name: string, args: unknown): Validated<McpToolCall> {
  const tool = MCP_TOOLS.find((t) => t === name);
  if (tool === undefined) {
    return { ok: false, code: 'INVALID_REQUEST', message: `name: unknown tool ${JSON.stringify(name)}; the tools are ${MCP_TOOLS.join(', ')}` };
  }
  // A call without arguments is a call with none (the spec makes `arguments` optional).
  const r = new FieldReader(args ?? {}, 'arguments');
  const timeout = (): number | undefined => r.number('timeout', { min: 0, exclusiveMin: true, unit: 'seconds' });
  let call: McpToolCall;
  switch (tool) {
    case 'run_code':
      call = withOptional({ tool, code: r.string('code', { required: true, allowEmpty: true }) ?? '' }, { language: r.string('language'), timeout: timeout() });
      break;
    case 'run_command':
      call = withOptional({ tool, command: r.string('command', { required: true, allowEmpty: true }) ?? '' }, { timeout: timeout() });
      break;
    case 'read_file':
      call = { tool, path: r.string('path', { required: true }) ?? '' };
      break;
    case 'write_file':
      call = { tool, path: r.string('path', { required: true }) ?? '', content: r.string('content', { required: true, allowEmpty: true }) ?? '' };
      break;
    case 'list_files':
      call = withOptional({ tool }, { dir: r.string('dir', { allowEmpty: true }) });
      break;
    case 'restart':
      call = { tool };
      break;
    default:
      return assertNever(tool, 'MCP tool');
  }
  r.rejectUnknown(Object.keys(MCP_TOOL_INPUT_SCHEMAS[tool].properties));
  const checked = r.result(call);
  return checked.ok ? checked : { ...checked, message: `${tool}: ${checked.message}` };
}

/** `base` with each defined value of `extra` (keeps `exactOptionalPropertyTypes` honest). */
function withOptional<B extends object, X extends Record<string, unknown>>(base: B, extra: X): B & { [K in keyof X]?: Exclude<X[K], undefined> } {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out as B & { [K in keyof X]?: Exclude<X[K], undefined> };
}
