/**
 * The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`. Request bodies are
 * protocol's JSON Schemas, the ones beside the validators the routes run (requests.ts), and the
 * error body lists protocol's error table; openapi.test.ts proves every registered route is here
 * and that schemas and validators agree.
 */
import {
  AGENT_REQUEST_SCHEMA,
  CREATE_SESSION_REQUEST_SCHEMA,
  ERROR_STATUS,
  EXECUTION_STATES,
  LANGUAGES,
  RUN_REQUEST_SCHEMA,
  SESSION_ID_PATTERN,
  STDIN_REQUEST_SCHEMA,
  type ErrorCode,
  type JSONSchema,
} from '@sluice/protocol';

/** One operation: what OpenAPI calls an Operation Object, as far as this API needs it. */
interface Operation {
  operationId: string;
  summary: string;
  tags: string[];
  parameters?: Parameter[];
  requestBody?: { required: boolean; content: Record<string, { schema: JSONSchema }> };
  responses: Record<string, Response>;
  /** `[]`: open without a key even when keys are configured (the document's default needs one). */
  security?: [];
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description: string;
  schema: JSONSchema;
}
interface Response {
  description: string;
  headers?: Record<string, { description: string; schema: JSONSchema }>;
  content?: Record<string, { schema: JSONSchema }>;
}

const ref = (name: string): JSONSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JSONSchema): Record<string, { schema: JSONSchema }> => ({ 'application/json': { schema } });
const object = (description: string, properties: Record<string, JSONSchema> = {}): JSONSchema => ({ type: 'object', description, properties });

const ID_PATTERN = { type: 'string', pattern: SESSION_ID_PATTERN.source } as const satisfies JSONSchema;
const sessionID: Parameter = { name: 'id', in: 'path', required: true, description: 'The session id.', schema: ID_PATTERN };
const executionID: Parameter = { name: 'id', in: 'path', required: true, description: 'The execution id.', schema: { type: 'string' } };
const runID: Parameter = { name: 'id', in: 'path', required: true, description: 'The agent run id.', schema: { type: 'string' } };
const filePath: Parameter = { name: 'path', in: 'path', required: true, description: 'A path inside the workspace (its segments percent-encoded).', schema: { type: 'string' } };
const from: Parameter = { name: 'from', in: 'query', required: false, description: 'First seq to send (resume).', schema: { type: 'integer', minimum: 1 } };
const lastEventID: Parameter = { name: 'Last-Event-ID', in: 'header', required: false, description: 'The last seq received: the stream resumes after it.', schema: { type: 'string' } };
const idempotencyKey: Parameter = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'A retry with the same key (within 24 h) gets the same execution or run, replayed from its log.',
  schema: { type: 'string' },
};
const accept: Parameter = {
  name: 'Accept',
  in: 'header',
  required: false,
  description: 'application/json (default: the buffered fold), text/event-stream (SSE) or application/x-ndjson.',
  schema: { type: 'string' },
};

/** Execution events as SSE (`id: seq`, `event: type`, `data: json`) or one JSON object per line. */
const eventStreams = (what: string): Record<string, { schema: JSONSchema }> => ({
  'text/event-stream': { schema: { type: 'string', description: `${what} as Server-Sent Events.` } },
  'application/x-ndjson': { schema: { type: 'string', description: `${what}, one JSON object per line.` } },
});

/** The error answers an operation may give, each with the contract's body. */
function errors(...codes: ErrorCode[]): Record<string, Response> {
  const all: ErrorCode[] = ['UNAUTHORIZED', ...codes, 'INTERNAL'];
  const out: Record<string, Response> = {};
  for (const code of all) {
    const status = String(ERROR_STATUS[code]);
    const existing = out[status];
    const codesHere = existing ? `${existing.description}, ${code}` : code;
    out[status] = { description: codesHere, content: json(ref('Error')) };
  }
  return out;
}

const tags = {
  sessions: ['sessions'],
  runs: ['runs'],
  executions: ['executions'],
  files: ['files'],
  agents: ['agent runs'],
  system: ['system'],
};

const PATHS: Record<string, Record<string, Operation>> = {
  '/api/sessions': {
    post: {
      operationId: 'createSession',
      summary: 'Create a session',
      tags: tags.sessions,
      requestBody: { required: false, content: json(ref('CreateSessionRequest')) },
      responses: { '201': { description: 'Created', content: json(ref('Session')) }, ...errors('INVALID_REQUEST', 'SESSION_BUSY', 'RATE_LIMITED', 'UNSUPPORTED_LANGUAGE', 'SANDBOX_UNAVAILABLE') },
    },
    get: {
      operationId: 'listSessions',
      summary: "List the caller's sessions",
      tags: tags.sessions,
      responses: { '200': { description: 'The sessions', content: json(object('', { sessions: { type: 'array', items: ref('Session') } })) }, ...errors() },
    },
  },
  '/api/sessions/{id}': {
    get: {
      operationId: 'getSession',
      summary: 'Inspect a session',
      tags: tags.sessions,
      parameters: [sessionID],
      responses: { '200': { description: 'The session', content: json(ref('Session')) }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
    delete: {
      operationId: 'deleteSession',
      summary: 'Destroy a session: kill everything in it, remove its workspace',
      tags: tags.sessions,
      parameters: [sessionID],
      responses: { '204': { description: 'Destroyed' }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/sessions/{id}/restart': {
    post: {
      operationId: 'restartSession',
      summary: "Stop the session's kernels (variables are gone; files stay)",
      tags: tags.sessions,
      parameters: [sessionID],
      responses: { '200': { description: 'The session, and which kernels were stopped', content: json(ref('Session')) }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/sessions/{id}/run': {
    post: {
      operationId: 'run',
      summary: 'Run code (a missing session is created); JSON, SSE or NDJSON by Accept',
      tags: tags.runs,
      parameters: [sessionID, accept, idempotencyKey],
      requestBody: { required: true, content: json(ref('RunRequest')) },
      responses: {
        '200': { description: 'The buffered result (JSON) or the live event stream', headers: executionHeaders(), content: { ...json(ref('ExecutionResult')), ...eventStreams('The execution events') } },
        ...errors('INVALID_REQUEST', 'SESSION_BUSY', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_LANGUAGE', 'RATE_LIMITED', 'SANDBOX_UNAVAILABLE'),
      },
    },
  },
  '/api/sessions/{id}/stream': {
    post: {
      operationId: 'stream',
      summary: 'Run code and stream its events as SSE',
      tags: tags.runs,
      parameters: [sessionID, idempotencyKey],
      requestBody: { required: true, content: json(ref('RunRequest')) },
      responses: {
        '200': { description: 'The live event stream', headers: executionHeaders(), content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...errors('INVALID_REQUEST', 'SESSION_BUSY', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_LANGUAGE', 'RATE_LIMITED', 'SANDBOX_UNAVAILABLE'),
      },
    },
  },
  '/api/sessions/{id}/ws': {
    get: {
      operationId: 'webSocket',
      summary: 'The WebSocket transport (docs/websocket.md); a plain GET answers 400',
      tags: tags.runs,
      parameters: [sessionID],
      responses: { '101': { description: 'Switching to the WebSocket protocol' }, ...errors('INVALID_REQUEST') },
    },
  },
  '/api/sessions/{id}/files': {
    get: {
      operationId: 'listFiles',
      summary: 'List a workspace directory',
      tags: tags.files,
      parameters: [sessionID, { name: 'dir', in: 'query', required: false, description: 'The directory (default: the workspace).', schema: { type: 'string' } }],
      responses: { '200': { description: 'Its entries', content: json(ref('FileList')) }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/sessions/{id}/files/{path}': {
    get: {
      operationId: 'downloadFile',
      summary: 'Download a workspace file (a directory is listed)',
      tags: tags.files,
      parameters: [sessionID, filePath],
      responses: {
        '200': { description: 'The file', content: { 'application/octet-stream': { schema: { type: 'string', description: 'The bytes of the file.' } }, ...json(ref('FileList')) } },
        ...errors('INVALID_REQUEST', 'NOT_FOUND'),
      },
    },
    put: {
      operationId: 'uploadFile',
      summary: 'Upload a workspace file (the body is its bytes)',
      tags: tags.files,
      parameters: [sessionID, filePath],
      requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', description: 'The bytes of the file.' } } } },
      responses: {
        '201': { description: 'Written', content: json(object('', { path: { type: 'string' }, size: { type: 'integer' } })) },
        ...errors('INVALID_REQUEST', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE'),
      },
    },
    delete: {
      operationId: 'deleteFile',
      summary: 'Delete a workspace file or directory',
      tags: tags.files,
      parameters: [sessionID, filePath],
      responses: { '204': { description: 'Deleted' }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/executions/{id}': {
    get: {
      operationId: 'getExecution',
      summary: 'State and the folded result so far',
      tags: tags.executions,
      parameters: [executionID],
      responses: { '200': { description: 'The execution', content: json(ref('Execution')) }, ...errors('NOT_FOUND') },
    },
  },
  '/api/executions/{id}/events': {
    get: {
      operationId: 'executionEvents',
      summary: 'The log from `from` / Last-Event-ID, then live until done',
      tags: tags.executions,
      parameters: [executionID, from, lastEventID, accept],
      responses: { '200': { description: 'The events', content: eventStreams('The execution events') }, '204': { description: 'Nothing more will come' }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/executions/{id}/stdin': {
    post: {
      operationId: 'writeStdin',
      summary: "Write to the execution's stdin",
      tags: tags.executions,
      parameters: [executionID],
      requestBody: { required: true, content: json(ref('StdinRequest')) },
      responses: {
        '202': { description: 'Accepted', content: json(object('', { execution_id: { type: 'string' }, state: { enum: EXECUTION_STATES }, bytes: { type: 'integer' }, eof: { type: 'boolean' } })) },
        ...errors('INVALID_REQUEST', 'NOT_FOUND', 'RATE_LIMITED'),
      },
    },
  },
  '/api/executions/{id}/cancel': {
    post: {
      operationId: 'cancelExecution',
      summary: 'Stop it (SIGTERM to the whole tree, SIGKILL after a grace period); idempotent',
      tags: tags.executions,
      parameters: [executionID],
      responses: {
        '200': { description: 'It had already finished', content: json(ref('CancelAnswer')) },
        '202': { description: 'Stopping; done will say cancelled', content: json(ref('CancelAnswer')) },
        ...errors('NOT_FOUND'),
      },
    },
  },
  '/api/sessions/{id}/agent': {
    post: {
      operationId: 'agent',
      summary: 'Start an agent run (the session keeps the conversation); JSON, SSE or NDJSON by Accept',
      tags: tags.agents,
      parameters: [sessionID, accept, idempotencyKey],
      requestBody: { required: true, content: json(ref('AgentRequest')) },
      responses: {
        '200': { description: 'The buffered fold (JSON) or the live agent events', content: { ...json(ref('AgentRunResult')), ...eventStreams('The agent events') } },
        ...errors('INVALID_REQUEST', 'SESSION_BUSY', 'UNSUPPORTED_LANGUAGE', 'RATE_LIMITED', 'SANDBOX_UNAVAILABLE', 'LLM_UNAVAILABLE', 'LLM_ERROR'),
      },
    },
    delete: {
      operationId: 'forgetConversation',
      summary: 'Forget the conversation (files and kernels stay)',
      tags: tags.agents,
      parameters: [sessionID],
      responses: { '204': { description: 'Forgotten' }, ...errors('INVALID_REQUEST', 'NOT_FOUND', 'SESSION_BUSY') },
    },
  },
  '/api/sessions/{id}/ag-ui': {
    post: {
      operationId: 'agUI',
      summary: 'An agent run spoken as the AG-UI protocol (docs/ag-ui.md)',
      tags: tags.agents,
      parameters: [sessionID],
      requestBody: { required: true, content: json(object("AG-UI's RunAgentInput (https://docs.ag-ui.com)")) },
      responses: {
        '200': { description: 'AG-UI events', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...errors('INVALID_REQUEST', 'SESSION_BUSY', 'RATE_LIMITED', 'SANDBOX_UNAVAILABLE', 'LLM_UNAVAILABLE'),
      },
    },
  },
  '/api/agent-runs/{id}': {
    get: {
      operationId: 'getAgentRun',
      summary: 'State and the fold so far',
      tags: tags.agents,
      parameters: [runID],
      responses: { '200': { description: 'The agent run', content: json(ref('AgentRun')) }, ...errors('NOT_FOUND') },
    },
  },
  '/api/agent-runs/{id}/events': {
    get: {
      operationId: 'agentRunEvents',
      summary: 'The log from `from` / Last-Event-ID, then live until end',
      tags: tags.agents,
      parameters: [runID, from, lastEventID, accept],
      responses: { '200': { description: 'The events', content: eventStreams('The agent events') }, '204': { description: 'Nothing more will come' }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/agent-runs/{id}/ag-ui': {
    get: {
      operationId: 'agentRunAGUI',
      summary: "The run's AG-UI events from `from` / Last-Event-ID",
      tags: tags.agents,
      parameters: [runID, from, lastEventID],
      responses: { '200': { description: 'AG-UI events', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors('INVALID_REQUEST', 'NOT_FOUND') },
    },
  },
  '/api/agent-runs/{id}/cancel': {
    post: {
      operationId: 'cancelAgentRun',
      summary: 'Stop the model call and any running tool; idempotent',
      tags: tags.agents,
      parameters: [runID],
      responses: {
        '200': { description: 'It had already finished', content: json(object('', { run_id: { type: 'string' }, state: { type: 'string' }, cancelled: { type: 'boolean' } })) },
        '202': { description: 'Stopping', content: json(object('', { run_id: { type: 'string' }, state: { type: 'string' }, cancelled: { type: 'boolean' } })) },
        ...errors('NOT_FOUND'),
      },
    },
  },
  '/api/languages': {
    get: {
      operationId: 'languages',
      summary: 'Every language of the contract, installed or not (then `reason` says why)',
      tags: tags.system,
      responses: { '200': { description: 'The languages', content: json(object('', { languages: { type: 'array', items: object('A language', { language: { enum: LANGUAGES }, installed: { type: 'boolean' } }) } })) }, ...errors() },
    },
  },
  '/healthz': {
    get: {
      operationId: 'health',
      summary: 'Whether the server can run code (open without a key)',
      tags: tags.system,
      responses: { '200': { description: 'It can', content: json(object('', { status: { const: 'ok' } })) }, ...errors('SANDBOX_UNAVAILABLE') },
    },
  },
  '/mcp': mcpOperations(),
  '/metrics': {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics (docs/operations.md)',
      tags: tags.system,
      responses: { '200': { description: 'The exposition text', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors() },
    },
  },
  '/openapi.json': {
    get: {
      operationId: 'openAPI',
      summary: 'This document',
      tags: tags.system,
      responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) }, ...errors() },
    },
  },
  '/': {
    get: {
      operationId: 'index',
      summary: 'What this server is and its endpoints; a browser (Accept preferring text/html) gets the playground page, open without a key',
      tags: tags.system,
      responses: {
        '200': {
          description: 'The index, or the playground page',
          content: {
            ...json(object('', { name: { type: 'string' }, description: { type: 'string' }, agent: { type: 'boolean' }, endpoints: { type: 'object' } })),
            'text/html': { schema: { type: 'string' } },
          },
        },
        ...errors(),
      },
    },
  },
  '/ui/{file}': {
    get: {
      operationId: 'playgroundFile',
      summary: "The playground's built files (docs/playground.md); open without a key",
      tags: tags.system,
      security: [],
      parameters: [{ name: 'file', in: 'path', required: true, description: 'A file name of the build (no directories).', schema: { type: 'string' } }],
      responses: {
        '200': { description: 'The file', content: { 'application/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
        '304': { description: "The client's copy is current (If-None-Match)" },
        '404': { description: 'NOT_FOUND: no such file (or the playground was not built)', content: json(ref('Error')) },
        '500': { description: 'INTERNAL', content: json(ref('Error')) },
      },
    },
  },
};

/**
 * `/mcp`: the Model Context Protocol's Streamable HTTP transport (docs/mcp.md). Its bodies are
 * JSON-RPC, described by the MCP specification, not here; its own refusals of a missing or
 * unknown `Mcp-Session-Id` (400, 404) carry JSON-RPC error bodies, as the SDK answers them.
 */
function mcpOperations(): Record<string, Operation> {
  const sessionHeader: Parameter = { name: 'Mcp-Session-Id', in: 'header', required: false, description: 'The MCP session (from the initialize answer); required after initialize.', schema: { type: 'string' } };
  const rpc = { 'application/json': { schema: { type: 'object', description: 'A JSON-RPC message (or a batch) of the Model Context Protocol.' } as JSONSchema } };
  const sse = { 'text/event-stream': { schema: { type: 'string', description: 'JSON-RPC messages as SSE events, each with an id for Last-Event-ID.' } as JSONSchema } };
  const summary = (what: string): string => `${what} (Model Context Protocol, Streamable HTTP; docs/mcp.md). A missing or unknown Mcp-Session-Id is 400 or 404 with a JSON-RPC error body.`;
  return {
    post: {
      operationId: 'mcpPost',
      summary: summary('A JSON-RPC message to the MCP server; initialize creates an MCP session and its Sluice session'),
      tags: ['mcp'],
      parameters: [sessionHeader],
      requestBody: { required: true, content: rpc },
      responses: { '200': { description: 'The answers, as SSE (live notifications, then the response)', content: sse }, '202': { description: 'Notifications and responses accepted' }, ...errors('FORBIDDEN', 'RATE_LIMITED') },
    },
    get: {
      operationId: 'mcpStream',
      summary: summary('The session\'s SSE stream of server messages; with Last-Event-ID, a cut stream resumed'),
      tags: ['mcp'],
      parameters: [sessionHeader, { name: 'Last-Event-ID', in: 'header', required: false, description: 'The last event id received (`<stream>:<seq>`).', schema: { type: 'string' } }],
      responses: { '200': { description: 'The stream', content: sse }, ...errors('FORBIDDEN') },
    },
    delete: {
      operationId: 'mcpEnd',
      summary: summary('Ends the MCP session and deletes its Sluice session'),
      tags: ['mcp'],
      parameters: [sessionHeader],
      responses: { '200': { description: 'Ended' }, ...errors('FORBIDDEN') },
    },
  };
}

function executionHeaders(): Record<string, { description: string; schema: JSONSchema }> {
  return {
    'Sluice-Execution-Id': { description: 'The execution id.', schema: { type: 'string' } },
    Location: { description: 'The execution: /api/executions/{id}.', schema: { type: 'string' } },
  };
}

const SCHEMAS: Record<string, JSONSchema> = {
  RunRequest: RUN_REQUEST_SCHEMA,
  CreateSessionRequest: CREATE_SESSION_REQUEST_SCHEMA,
  AgentRequest: AGENT_REQUEST_SCHEMA,
  StdinRequest: STDIN_REQUEST_SCHEMA,
  Error: {
    type: 'object',
    description: 'Every error answer (the status follows from the code).',
    properties: {
      error: {
        type: 'object',
        properties: {
          code: { enum: Object.keys(ERROR_STATUS), description: Object.entries(ERROR_STATUS).map(([c, s]) => `${c} ${s}`).join(', ') },
          message: { type: 'string', description: 'What was expected, what arrived, and what to change.' },
        },
        required: ['code', 'message'],
      },
    },
    required: ['error'],
  },
  Session: object('A session (docs/api.md)', { id: ID_PATTERN, language: { enum: LANGUAGES } }),
  Execution: object('An execution: its state and the fold of its log so far (docs/api.md)', { execution_id: { type: 'string' }, state: { enum: EXECUTION_STATES } }),
  ExecutionResult: object('The fold of a finished execution (docs/events.md)', {
    execution_id: { type: 'string' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    exit_code: { type: ['integer', 'null'] },
    duration: { type: 'string' },
    duration_ms: { type: 'number' },
    reason: { type: 'string' },
  }),
  CancelAnswer: object('', { execution_id: { type: 'string' }, state: { enum: EXECUTION_STATES }, cancelled: { type: 'boolean' } }),
  FileList: object('A directory listing', { dir: { type: 'string' }, entries: { type: 'array', items: { type: 'object' } } }),
  AgentRun: object('An agent run: its state and the fold so far (docs/agents.md)', { run_id: { type: 'string' } }),
  AgentRunResult: object('The fold of a finished agent run (docs/agents.md)', { run_id: { type: 'string' }, text: { type: 'string' }, reason: { type: 'string' } }),
};

/** The document (built once; it depends on nothing but the code). */
export function openAPIDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice',
      version,
      description: 'Runs untrusted code in sandboxes and streams its output live (SSE, NDJSON, WebSocket, buffered JSON).',
    },
    // With API keys configured every operation but /healthz needs one; without, none does.
    security: [{ bearer: [] }, {}],
    paths: PATHS,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key of SLUICE_API_KEYS (docs/auth.md).' } },
      schemas: SCHEMAS,
    },
  };
}
