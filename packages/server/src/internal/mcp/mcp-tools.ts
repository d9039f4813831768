/**
 * One MCP session's `Server` (the SDK's low-level one): tools, resources and logging over one
 * Sluice session. Tool arguments are checked by protocol's parseMcpToolCall (a bad one is a
 * JSON-RPC InvalidParams error naming the field); runs go through submitRun like HTTP runs, and
 * their output streams live as progress notifications and log messages on the request's own
 * stream (docs/mcp.md has the mapping).
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  type CallToolResult,
  type LoggingLevel,
  type ReadResourceResult,
  type Resource,
  type ServerNotification,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import {
  assertNever,
  MCP_RUN_OUTPUT_SCHEMA,
  MCP_TOOL_DESCRIPTIONS,
  MCP_TOOL_INPUT_SCHEMAS,
  MCP_TOOLS,
  parseMcpToolCall,
  type McpRunOutput,
  type McpTool,
  type OutputStream,
  type RunRequest,
} from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import { segments, SessionTools, type RunOutcome, type SubmittedRun, type ToolEmitter } from '../agent/session-tools.js';
import type { SessionFiles } from '../backend/backend.js';

/** Characters of stdout and of stderr a run's result keeps (head and tail). */
export const MCP_MAX_OUTPUT_CHARS = 100_000;
/** Files `resources/list` lists at most (a walk of the workspace, breadth first). */
export const MCP_MAX_RESOURCES = 1000;
/** Largest file `resources/read` returns, bytes. */
export const MCP_MAX_RESOURCE_BYTES = 10 * 1024 * 1024;
/** The spec's code for a resource that does not exist. */
const RESOURCE_NOT_FOUND = -32002;
const WORKSPACE_URI = 'file:///workspace/';

export interface McpToolsDeps {
  sessionID: string;
  /** The session's language: run_code's when the client names none. */
  language: string;
  /** The session's workspace. */
  files: SessionFiles;
  /** Queues a run in the session (Backend.submitRun). */
  submit(request: RunRequest): Promise<SubmittedRun>;
  /** Restarts the session's kernels; resolves to the languages of those stopped. */
  restart(): Promise<string[]>;
  killGraceMs: number;
  version: string;
}

/** Rich result types that become image content. */
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
/** Rich result types that become embedded text resources. */
const TEXT_RESOURCE_TYPES = ['text/html', 'image/svg+xml', 'application/json'];

/** Syslog levels in the order of MCP's `logging/setLevel`. */
const LEVELS: LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

export function createMcpServer(deps: McpToolsDeps): Server {
  const { sessionID, files } = deps;
  const server = new Server(
    { name: 'sluice', version: deps.version },
    {
      capabilities: { tools: {}, resources: {}, logging: {} },
      instructions:
        `Sluice runs code in sandboxes. This MCP session is Sluice session ${sessionID} (GET /api/sessions/${sessionID}; its runs are at /api/executions/{id}). ` +
        "run_code keeps state between calls (Python and JavaScript kernels); files written to /workspace are listed as resources.",
    },
  );
  const tools = new SessionTools({ files, submit: deps.submit, defaultLanguage: deps.language, timeoutSec: undefined, maxOutputChars: MCP_MAX_OUTPUT_CHARS, killGraceMs: deps.killGraceMs });
  // The client's logging/setLevel: log messages below it are not sent (progress notifications still are).
  let minLevel: LoggingLevel = 'debug';
  server.removeRequestHandler('logging/setLevel');
  server.setRequestHandler(SetLevelRequestSchema, (req) => {
    minLevel = req.params.level;
    return {};
  });
  const logs = (level: LoggingLevel): boolean => LEVELS.indexOf(level) >= LEVELS.indexOf(minLevel);

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: MCP_TOOLS.map(describeTool) }));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const parsed = parseMcpToolCall(request.params.name, request.params.arguments);
    if (!parsed.ok) throw invalidParams(parsed.message);
    const call = parsed.value;
    const token = request.params._meta?.progressToken;
    // Sent in call order: each is stored in the stream's log synchronously (mcp-event-store.ts).
    const notify = (n: ServerNotification): void => void extra.sendNotification(n).catch(() => {});
    const emit: ToolEmitter = {
      output(stream: OutputStream, text: string, _id: string, seq: number) {
        if (token !== undefined) notify({ method: 'notifications/progress', params: { progressToken: token, progress: seq, message: text } });
        const level = stream === 'stdout' ? 'info' : 'warning';
        if (logs(level)) notify({ method: 'notifications/message', params: { level, logger: stream, data: text } });
      },
      progress(_id, fields, seq) {
        if (token === undefined) return;
        const p = fields.percent;
        const message = fields.message ?? (p !== undefined ? `${p}%` : undefined);
        const total = progressTotal(seq, p);
        notify({ method: 'notifications/progress', params: { progressToken: token, progress: seq, ...(total !== undefined ? { total } : {}), ...(message !== undefined ? { message } : {}) } });
      },
      result() {},
    };
    try {
      switch (call.tool) {
        case 'run_code':
          return runResult(await tools.execute(withTimeout({ code: call.code, ...(call.language !== undefined ? { language: call.language } : {}) }, call.timeout), emit, extra.signal));
        case 'run_command':
          return runResult(await tools.execute(withTimeout({ code: call.command, language: 'bash', mode: 'process' }, call.timeout), emit, extra.signal));
        case 'read_file':
          return textResult(await tools.run({ tool: 'read_file', path: call.path }, emit, extra.signal));
        case 'write_file':
          return textResult(await tools.run({ tool: 'write_file', path: call.path, content: call.content }, emit, extra.signal));
        case 'list_files':
          return textResult(await tools.run({ tool: 'list_files', dir: call.dir ?? '' }, emit, extra.signal));
        case 'restart': {
          const stopped = await deps.restart();
          return { content: [{ type: 'text', text: stopped.length === 0 ? 'no kernel was running; the next run_code starts a fresh one' : `restarted: ${stopped.join(', ')}; variables and imports are gone, files stay` }] };
        }
        default:
          return assertNever(call, 'MCP tool call');
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // The argument was well-formed but names what this server lacks (a language, a mode).
      if (err.code === 'UNSUPPORTED_LANGUAGE' || err.code === 'INVALID_REQUEST') throw invalidParams(`${call.tool}: ${err.message}`);
      // A refusal (no free sandbox, a full queue): the caller's to handle, as a tool error.
      return { content: [{ type: 'text', text: `error: ${err.message} (${err.code})` }], isError: true };
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: await listResources(files) }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
    resourceTemplates: [{ uriTemplate: `${WORKSPACE_URI}{path}`, name: 'workspace file', description: "A file of the session's workspace (/workspace)." }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => readResource(files, sessionID, request.params.uri));
  return server;
}

function describeTool(tool: McpTool): Tool {
  const run = tool === 'run_code' || tool === 'run_command';
  // The schemas are readonly constants; the SDK's Tool type wants mutable objects.
  const inputSchema = structuredClone(MCP_TOOL_INPUT_SCHEMAS[tool]) as unknown as Tool['inputSchema'];
  return {
    name: tool,
    description: MCP_TOOL_DESCRIPTIONS[tool],
    inputSchema,
    ...(run ? { outputSchema: structuredClone(MCP_RUN_OUTPUT_SCHEMA) as unknown as NonNullable<Tool['outputSchema']> } : {}),
    annotations: { readOnlyHint: tool === 'read_file' || tool === 'list_files', openWorldHint: false },
  };
}

function withTimeout(request: RunRequest, timeout: number | undefined): RunRequest {
  return timeout === undefined ? request : { ...request, timeout };
}

/** A run's result: the summary as text, then its rich results, and structuredContent. */
function runResult(outcome: RunOutcome): CallToolResult {
  const content: CallToolResult['content'] = [{ type: 'text', text: outcome.output }];
  for (const [i, data] of outcome.results.entries()) {
    const image = IMAGE_TYPES.find((t) => typeof data[t] === 'string');
    if (image) {
      content.push({ type: 'image', data: data[image] as string, mimeType: image });
      continue;
    }
    const textType = TEXT_RESOURCE_TYPES.find((t) => data[t] !== undefined);
    if (textType) {
      const value = data[textType];
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      content.push({ type: 'resource', resource: { uri: `sluice://executions/${outcome.executionID}/results/${i + 1}`, mimeType: textType, text } });
    }
    // A text/plain-only result is in the summary's `result:` section already.
  }
  const structured: McpRunOutput = {
    exit_code: outcome.exitCode,
    reason: outcome.reason,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
    execution_id: outcome.executionID,
    duration_ms: outcome.durationMs,
  };
  const failed = outcome.reason !== 'exited' || outcome.exitCode !== 0;
  return { content, structuredContent: { ...structured }, ...(failed ? { isError: true } : {}) };
}

/** A file tool's outcome: its text, an error when it was refused. */
function textResult(outcome: { output: string; exitCode: number | null }): CallToolResult {
  return { content: [{ type: 'text', text: outcome.output }], ...(outcome.exitCode !== 0 ? { isError: true } : {}) };
}

/** The workspace's regular files, breadth first, at most MCP_MAX_RESOURCES. */
async function listResources(files: SessionFiles): Promise<Resource[]> {
  const out: Resource[] = [];
  const dirs: string[][] = [[]];
  for (let d = dirs.shift(); d !== undefined && out.length < MCP_MAX_RESOURCES; d = dirs.shift()) {
    // A directory removed meanwhile (the code is running) is skipped.
    const entries = await files.list(d).catch(() => []);
    for (const e of entries) {
      if (e.type === 'directory') dirs.push([...d, e.name]);
      else if (e.type === 'file' && out.length < MCP_MAX_RESOURCES) {
        out.push({ uri: uriOf(e.path), name: e.path, mimeType: mimeTypeOf(e.name), size: e.size });
      }
    }
  }
  return out;
}

async function readResource(files: SessionFiles, sessionID: string, uri: string): Promise<ReadResourceResult> {
  if (!uri.startsWith(WORKSPACE_URI)) throw invalidParams(`uri: expected ${WORKSPACE_URI}<path>, got ${JSON.stringify(uri)}`);
  let path: string;
  try {
    path = decodeURIComponent(uri.slice(WORKSPACE_URI.length));
  } catch {
    throw invalidParams(`uri: not a valid percent-encoded path: ${JSON.stringify(uri)}`);
  }
  try {
    const file = await files.open(segments(path, 'uri'));
    if (file.size > MCP_MAX_RESOURCE_BYTES) {
      file.stream.destroy();
      throw invalidParams(`uri: ${path} has ${file.size} bytes; resources/read returns at most ${MCP_MAX_RESOURCE_BYTES} (download it with GET /api/sessions/${sessionID}/files/${path})`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of file.stream) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    const mimeType = mimeTypeOf(path);
    const text = utf8Text(bytes);
    return { contents: [text !== null ? { uri, mimeType, text } : { uri, mimeType, blob: bytes.toString('base64') }] };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    throw resourceError(err);
  }
}

/**
 * The JSON-RPC error of a refused resources/read: a missing file is MCP's -32002, a bad path
 * InvalidParams; a file the session's code is writing (SESSION_BUSY) and any other refusal is
 * no fault of the arguments: an InternalError, whose message says to retry.
 */
export function resourceError(err: ApiError): McpError {
  if (err.code === 'NOT_FOUND') return mcpError(RESOURCE_NOT_FOUND, err.message);
  if (err.code === 'INVALID_REQUEST' || err.code === 'FORBIDDEN') return invalidParams(err.message);
  return mcpError(ErrorCode.InternalError, `${err.message} (${err.code})`);
}

/**
 * The `total` of a code's progress(percent) notification: progress/total is the code's fraction
 * while progress (the seq) keeps increasing. None without a percent > 0, or when the quotient is
 * not a finite number (a subnormal percent such as 1e-320 makes it Infinity).
 */
export function progressTotal(seq: number, percent: number | undefined): number | undefined {
  if (percent === undefined || !(percent > 0)) return undefined;
  const total = (seq * 100) / percent;
  return Number.isFinite(total) ? total : undefined;
}

/**
 * An McpError whose message is ours alone: McpError prefixes "MCP error <code>: ", which the
 * client's McpError would prefix again.
 */
function mcpError(code: number, message: string): McpError {
  const err = new McpError(code, message);
  err.message = message;
  return err;
}

/** JSON-RPC InvalidParams: a bad argument, named in `message`. */
function invalidParams(message: string): McpError {
  return mcpError(ErrorCode.InvalidParams, message);
}

/** The text of UTF-8 bytes without NUL, or null (binary). */
function utf8Text(bytes: Buffer): string | null {
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function uriOf(path: string): string {
  return WORKSPACE_URI + path.split('/').map(encodeURIComponent).join('/');
}

const MIME_TYPES: Record<string, string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  log: 'text/plain',
  py: 'text/x-python',
  js: 'text/javascript',
  mjs: 'text/javascript',
  ts: 'text/x-typescript',
  sh: 'text/x-shellscript',
  r: 'text/x-r',
  java: 'text/x-java',
  json: 'application/json',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  xml: 'application/xml',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  parquet: 'application/vnd.apache.parquet',
};

/** A media type guessed from the file name's extension. */
export function mimeTypeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
  return MIME_TYPES[ext] ?? 'application/octet-stream';
}
