/**
 * Request bodies of the HTTP API and their validators. Inbound JSON is `unknown` until one
 * of these narrows it; every failure names the field, what was expected and what arrived.
 */
import { AGENT_TOOLS, type AgentTool } from './agent-events.js';
import { MODES, type Mode } from './events.js';
import type { ErrorCode } from './errors.js';
import type { JSONSchema, ObjectSchema } from './json-schema.js';

/** What a dropped HTTP stream does to its execution: let it run on (resumable) or cancel it. */
export type OnDisconnect = 'continue' | 'cancel';

/** Body of `POST /api/sessions/{id}/run` and `/stream`. */
export interface RunRequest {
  code: string;
  language?: string;
  mode?: Mode;
  /** Seconds; the server caps it at its maximum. */
  timeout?: number;
  stdin?: string;
  env?: Record<string, string>;
  /** Seconds between SSE `: ping` comments, at least {@link MIN_HEARTBEAT_SEC}. */
  heartbeat?: number;
  on_disconnect?: OnDisconnect;
}

/** Per-session limits a client may ask for (each within the server's caps). */
export interface SessionLimits {
  /** Output bytes kept per execution (head and tail) before `truncated`. */
  output_bytes?: number;
  /** Processes and threads the session's uid may have at once. */
  processes?: number;
  open_files?: number;
  /** Largest file the code may write, in bytes. */
  file_size?: number;
  /** Memory of all the session's processes together (cgroup), bytes; the workspace tmpfs counts too. */
  memory_bytes?: number;
  /** CPU share: how many CPUs' worth of time the processes may use at once (e.g. 0.5). */
  cpu?: number;
  /** CPU-time budget of one execution across all its processes, seconds. */
  cpu_time?: number;
  /** Size of the workspace, bytes. */
  disk_bytes?: number;
  /** Files and directories the workspace may hold. */
  inodes?: number;
}
/** Every key of {@link SessionLimits}, in the order views list them. */
export const SESSION_LIMIT_KEYS = [
  'output_bytes',
  'processes',
  'open_files',
  'file_size',
  'memory_bytes',
  'cpu',
  'cpu_time',
  'disk_bytes',
  'inodes',
] as const satisfies readonly (keyof SessionLimits)[];

/**
 * The smallest value of each limit with which a sandbox can still start: bwrap, its init and
 * status reporter, then `python3 -c 'print(1)'`, `bash -c 'echo 1'` and both kernels. Measured
 * (see docs/limits.md): a bare process needs 4 tasks, Node's kernel 9 (it hangs at 8) and 20
 * open files; the minimums leave headroom for runtimes' thread pools. The code of a
 * process-mode run is written as a file under `file_size` too.
 */
export const SESSION_LIMIT_MINIMUMS = {
  processes: 16,
  open_files: 32,
  file_size: 64 * 1024,
  memory_bytes: 16 * 1024 * 1024,
  disk_bytes: 1024 * 1024,
  inodes: 64,
} as const satisfies Partial<Record<keyof SessionLimits, number>>;

/** The shortest SSE heartbeat period a run may ask for, seconds (a ping per millisecond helps no proxy). */
export const MIN_HEARTBEAT_SEC = 1;

/** Body of `POST /api/sessions`. */
export interface CreateSessionRequest {
  id?: string;
  language?: string;
  env?: Record<string, string>;
  timeout?: number;
  /** Seconds without activity after which the session is destroyed. */
  idle_ttl?: number;
  network?: boolean;
  limits?: SessionLimits;
}

/** Outcome of a validator: the narrowed value, or the error to answer with. */
export type Validated<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

/** Session ids: letters, digits, `-` and `_`, 1 to 64 characters. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_ENV_VARS = 256;
const MAX_ENV_VALUE = 32 * 1024;

/*
 * JSON Schemas of the bodies, beside their validators: each validator takes its field list from
 * its schema's `properties`, and openapi.test.ts (server) runs both on one corpus of bodies.
 * JSON Schema counts string lengths in code points where the validators count UTF-16 units:
 * they differ only at a limit, for characters outside the BMP.
 */
const nonEmptyString = (description: string): JSONSchema => ({ type: 'string', minLength: 1, description });
const seconds = (description: string): JSONSchema => ({ type: 'number', exclusiveMinimum: 0, description: `${description}, seconds.` });
const ON_DISCONNECT_SCHEMA: JSONSchema = {
  enum: ['continue', 'cancel'],
  description: 'What a dropped HTTP stream does to the run: let it go on (resumable, the default) or cancel it.',
};
const HEARTBEAT_SCHEMA: JSONSchema = { type: 'number', minimum: MIN_HEARTBEAT_SEC, maximum: 3600, description: 'Seconds between SSE `: ping` comments.' };
const ENV_SCHEMA: JSONSchema = {
  type: 'object',
  description: 'Environment variables (name → value).',
  maxProperties: MAX_ENV_VARS,
  propertyNames: { pattern: ENV_NAME.source },
  additionalProperties: { type: 'string', maxLength: MAX_ENV_VALUE, pattern: '^[^\\u0000]*$' },
};

/** JSON Schema of {@link RunRequest}. */
export const RUN_REQUEST_SCHEMA = {
  type: 'object',
  properties: {
    code: { type: 'string', description: 'The code (or, in bash, the command line) to run.' },
    language: nonEmptyString("One of GET /api/languages; default: the session's."),
    mode: { enum: MODES, description: 'kernel (state kept between runs; python and javascript) or process (a fresh process).' },
    timeout: seconds('Wall-time limit, capped by the server'),
    stdin: { type: 'string', description: 'The whole of stdin; without it stdin stays open for POST /api/executions/{id}/stdin.' },
    env: ENV_SCHEMA,
    heartbeat: HEARTBEAT_SCHEMA,
    on_disconnect: ON_DISCONNECT_SCHEMA,
  },
  required: ['code'],
  additionalProperties: false,
} as const satisfies ObjectSchema<keyof RunRequest>;

const atLeast = (key: keyof typeof SESSION_LIMIT_MINIMUMS, description: string): JSONSchema => ({
  type: 'integer',
  minimum: SESSION_LIMIT_MINIMUMS[key],
  description: `${description} (no sandbox can start with less).`,
});

/** JSON Schema of {@link SessionLimits}. */
export const SESSION_LIMITS_SCHEMA = {
  type: 'object',
  description: "Per-session limits, each within the server's caps.",
  properties: {
    output_bytes: { type: 'integer', minimum: 1, description: 'Output bytes kept per execution (head and tail) before `truncated`.' },
    processes: atLeast('processes', 'Processes and threads at once'),
    open_files: atLeast('open_files', 'Open files per process'),
    file_size: atLeast('file_size', 'Largest file the code may write, bytes'),
    memory_bytes: atLeast('memory_bytes', 'Memory of all the processes together, bytes'),
    cpu: { type: 'number', minimum: 0.01, maximum: 1024, description: "CPUs' worth of time the processes may use at once." },
    cpu_time: seconds('CPU-time budget of one execution'),
    disk_bytes: atLeast('disk_bytes', 'Size of the workspace, bytes'),
    inodes: atLeast('inodes', 'Files and directories the workspace may hold'),
  },
  additionalProperties: false,
} as const satisfies ObjectSchema<keyof SessionLimits>;

/** JSON Schema of {@link CreateSessionRequest}. */
export const CREATE_SESSION_REQUEST_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string', pattern: SESSION_ID_PATTERN.source, description: 'The session id; default: a random one.' },
    language: nonEmptyString('Default language of its runs; default python.'),
    env: ENV_SCHEMA,
    timeout: seconds('Default timeout of its runs'),
    idle_ttl: seconds('Time without activity after which the session is destroyed'),
    network: { type: 'boolean', description: 'Network access for its sandboxes (when the server allows it).' },
    limits: SESSION_LIMITS_SCHEMA,
  },
  additionalProperties: false,
} as const satisfies ObjectSchema<keyof CreateSessionRequest>;

/** JSON Schema of {@link StdinRequest}: `data` may be left out only with `"eof": true`. */
export const STDIN_REQUEST_SCHEMA = {
  type: 'object',
  properties: {
    data: { type: 'string', description: "Text for the program's stdin." },
    eof: { type: 'boolean', description: 'Close stdin after `data`.' },
  },
  anyOf: [{ required: ['data'] }, { required: ['eof'], properties: { eof: { const: true } } }],
  additionalProperties: false,
} as const satisfies ObjectSchema<keyof StdinRequest>;

/** Checks a session id from a path or a body. */
export function validateSessionID(value: unknown, field = 'session id'): Validated<string> {
  if (typeof value === 'string' && SESSION_ID_PATTERN.test(value)) return { ok: true, value };
  return invalid(field, 'letters, digits, "-" or "_", 1 to 64 characters', value);
}

/** Validates the body of a run request. */
export function parseRunRequest(body: unknown): Validated<RunRequest> {
  const r = new FieldReader(body, 'request body');
  const code = r.string('code', { required: true, allowEmpty: true });
  const out: RunRequest = { code: code ?? '' };
  assign(out, 'language', r.string('language'));
  assign(out, 'mode', r.oneOf('mode', MODES));
  assign(out, 'timeout', r.number('timeout', { min: 0, exclusiveMin: true, unit: 'seconds' }));
  assign(out, 'stdin', r.string('stdin', { allowEmpty: true }));
  assign(out, 'env', r.env('env'));
  assign(out, 'heartbeat', r.number('heartbeat', { min: MIN_HEARTBEAT_SEC, max: 3600, unit: 'seconds' }));
  assign(out, 'on_disconnect', r.oneOf('on_disconnect', ['continue', 'cancel'] as const));
  r.rejectUnknown(Object.keys(RUN_REQUEST_SCHEMA.properties));
  return r.result(out);
}

/** Most turns (model calls) one agent run may take; a request asks for at most this. */
export const MAX_AGENT_TURNS = 100;
/** Longest `prompt` and `system`, characters. */
export const MAX_PROMPT_CHARS = 1024 * 1024;

/** Body of `POST /api/sessions/{id}/agent` (and the fields of the WebSocket `agent` message). */
export interface AgentRequest {
  prompt: string;
  /** Replaces the default system prompt (only a new conversation's; a continued one keeps its own). */
  system?: string;
  /** One of the server's allowed models (`SLUICE_LLM_MODELS`). */
  model?: string;
  /** Model calls at most (default 10; the server caps it). */
  max_turns?: number;
  /** The tools the model may call (default: all of them). */
  tools?: AgentTool[];
  /** Language of `run_code` when the model names none (default: the session's). */
  language?: string;
  /** Seconds each `run_code` may take (the server caps it). */
  timeout?: number;
  /** Seconds between SSE `: ping` comments. */
  heartbeat?: number;
  on_disconnect?: OnDisconnect;
}

/** JSON Schema of {@link AgentRequest}. */
export const AGENT_REQUEST_SCHEMA = {
  type: 'object',
  properties: {
    prompt: { type: 'string', minLength: 1, maxLength: MAX_PROMPT_CHARS, description: 'What to ask; the next prompt in the session continues the conversation.' },
    system: { type: 'string', maxLength: MAX_PROMPT_CHARS, description: "Replaces the default system prompt (a new conversation's only)." },
    model: nonEmptyString("One of the server's allowed models."),
    max_turns: { type: 'integer', minimum: 1, maximum: MAX_AGENT_TURNS, description: 'Model calls at most (the server caps it).' },
    tools: { type: 'array', items: { enum: AGENT_TOOLS }, uniqueItems: true, description: 'The tools the model may call; default: all.' },
    language: nonEmptyString("Language of run_code when the model names none; default: the session's."),
    timeout: seconds('Limit of each run_code'),
    heartbeat: HEARTBEAT_SCHEMA,
    on_disconnect: ON_DISCONNECT_SCHEMA,
  },
  required: ['prompt'],
  additionalProperties: false,
} as const satisfies ObjectSchema<keyof AgentRequest>;

const AGENT_REQUEST_FIELDS = Object.keys(AGENT_REQUEST_SCHEMA.properties);

/** Validates the body of an agent request. */
export function parseAgentRequest(body: unknown): Validated<AgentRequest> {
  const r = new FieldReader(body, 'request body');
  const prompt = r.string('prompt', { required: true });
  const out: AgentRequest = { prompt: prompt ?? '' };
  if (prompt !== undefined && prompt.length > MAX_PROMPT_CHARS) r.fail('prompt', `at most ${MAX_PROMPT_CHARS} characters`, `${prompt.length} characters`);
  const system = r.string('system', { allowEmpty: true });
  if (system !== undefined && system.length > MAX_PROMPT_CHARS) r.fail('system', `at most ${MAX_PROMPT_CHARS} characters`, `${system.length} characters`);
  assign(out, 'system', system);
  assign(out, 'model', r.string('model'));
  assign(out, 'max_turns', r.number('max_turns', { min: 1, max: MAX_AGENT_TURNS, integer: true }));
  assign(out, 'tools', r.subsetOf('tools', AGENT_TOOLS));
  assign(out, 'language', r.string('language'));
  assign(out, 'timeout', r.number('timeout', { min: 0, exclusiveMin: true, unit: 'seconds' }));
  assign(out, 'heartbeat', r.number('heartbeat', { min: MIN_HEARTBEAT_SEC, max: 3600, unit: 'seconds' }));
  assign(out, 'on_disconnect', r.oneOf('on_disconnect', ['continue', 'cancel'] as const));
  r.rejectUnknown(AGENT_REQUEST_FIELDS);
  return r.result(out);
}

/** The field names an agent request may carry. */
export const AGENT_REQUEST_KEYS: readonly string[] = AGENT_REQUEST_FIELDS;

/** Body of `POST /api/executions/{id}/stdin`. */
export interface StdinRequest {
  data: string;
  /** Close stdin after `data` (end of file). */
  eof?: boolean;
}

/** Validates the body of a stdin write: `data` may be empty when `eof` is true. */
export function parseStdinRequest(body: unknown): Validated<StdinRequest> {
  const r = new FieldReader(body, 'request body');
  const data = r.string('data', { allowEmpty: true });
  const out: StdinRequest = { data: data ?? '' };
  assign(out, 'eof', r.boolean('eof'));
  r.rejectUnknown(Object.keys(STDIN_REQUEST_SCHEMA.properties));
  const checked = r.result(out);
  if (checked.ok && data === undefined && out.eof !== true) return invalid('data', 'a string (or "eof": true)', undefined);
  return checked;
}

/** Validates the body of `POST /api/sessions` (an absent body means all defaults). */
export function parseCreateSessionRequest(body: unknown): Validated<CreateSessionRequest> {
  const r = new FieldReader(body ?? {}, 'request body');
  const out: CreateSessionRequest = {};
  const id = r.string('id');
  if (id !== undefined && !SESSION_ID_PATTERN.test(id)) r.fail('id', 'letters, digits, "-" or "_", 1 to 64 characters', id);
  assign(out, 'id', id);
  assign(out, 'language', r.string('language'));
  assign(out, 'env', r.env('env'));
  assign(out, 'timeout', r.number('timeout', { min: 0, exclusiveMin: true, unit: 'seconds' }));
  assign(out, 'idle_ttl', r.number('idle_ttl', { min: 0, exclusiveMin: true, unit: 'seconds' }));
  assign(out, 'network', r.boolean('network'));
  assign(out, 'limits', r.limits('limits'));
  r.rejectUnknown(Object.keys(CREATE_SESSION_REQUEST_SCHEMA.properties));
  return r.result(out);
}

/** Sets `target[key]` only when the value is defined (keeps `exactOptionalPropertyTypes` honest). */
function assign<T, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

/** Describes a received value for an error message: `"abc" (string)`, `null`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
      return `${JSON.stringify(shown)} (string)`;
    }
    case 'number':
    case 'boolean':
      return `${String(value)} (${typeof value})`;
    case 'undefined':
      return 'nothing';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

function invalid(field: string, expected: string, got: unknown): { ok: false; code: ErrorCode; message: string } {
  return { ok: false, code: 'INVALID_REQUEST', message: `${field}: expected ${expected}, got ${describeValue(got)}` };
}

/**
 * Reads typed fields off an untrusted object, remembering the first failure (exported for the
 * MCP tool arguments' parsers in mcp-tools.ts; each message names the field).
 */
export class FieldReader {
  private readonly obj: Record<string, unknown>;
  private failure: { ok: false; code: ErrorCode; message: string } | undefined;

  constructor(value: unknown, what: string) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      this.obj = value as Record<string, unknown>;
    } else {
      this.obj = {};
      this.failure = invalid(what, 'a JSON object', value);
    }
  }

  fail(field: string, expected: string, got: unknown): void {
    this.failure ??= invalid(field, expected, got);
  }

  string(field: string, opts: { required?: boolean; allowEmpty?: boolean } = {}): string | undefined {
    const v = this.obj[field];
    if (v === undefined) {
      if (opts.required) this.fail(field, 'a string (it is required)', v);
      return undefined;
    }
    if (typeof v !== 'string' || (!opts.allowEmpty && v.length === 0)) {
      this.fail(field, opts.allowEmpty ? 'a string' : 'a non-empty string', v);
      return undefined;
    }
    return v;
  }

  boolean(field: string): boolean | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      this.fail(field, 'true or false', v);
      return undefined;
    }
    return v;
  }

  number(
    field: string,
    opts: { min?: number; exclusiveMin?: boolean; max?: number; integer?: boolean; unit?: string },
    shownField = field,
  ): number | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    const parts: string[] = [opts.integer ? 'an integer' : 'a number'];
    if (opts.min !== undefined) parts.push(opts.exclusiveMin ? `> ${opts.min}` : `>= ${opts.min}`);
    if (opts.max !== undefined) parts.push(`<= ${opts.max}`);
    if (opts.unit) parts.push(`(${opts.unit})`);
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!opts.integer || Number.isInteger(v)) &&
      (opts.min === undefined || (opts.exclusiveMin ? v > opts.min : v >= opts.min)) &&
      (opts.max === undefined || v <= opts.max);
    if (!ok) {
      this.fail(shownField, parts.join(' '), v);
      return undefined;
    }
    return v;
  }

  oneOf<const T extends string>(field: string, allowed: readonly T[]): T | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(field, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, v);
      return undefined;
    }
    return v as T;
  }

  /** An array of distinct values from `allowed` (possibly empty). */
  subsetOf<const T extends string>(field: string, allowed: readonly T[]): T[] | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    const expected = `an array of distinct values from ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
    if (!Array.isArray(v)) {
      this.fail(field, expected, v);
      return undefined;
    }
    const out: T[] = [];
    for (const [i, item] of v.entries()) {
      if (typeof item !== 'string' || !(allowed as readonly string[]).includes(item) || out.includes(item as T)) {
        this.fail(`${field}[${i}]`, expected, item);
        return undefined;
      }
      out.push(item as T);
    }
    return out;
  }

  env(field: string): Record<string, string> | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.fail(field, 'an object of environment variables (name → string)', v);
      return undefined;
    }
    const entries = Object.entries(v);
    if (entries.length > MAX_ENV_VARS) {
      this.fail(field, `at most ${MAX_ENV_VARS} variables`, `${entries.length} variables`);
      return undefined;
    }
    const out: Record<string, string> = {};
    for (const [name, value] of entries) {
      if (!ENV_NAME.test(name)) {
        this.fail(`${field} name`, 'letters, digits and "_", not starting with a digit', name);
        return undefined;
      }
      if (typeof value !== 'string' || value.includes('\0') || value.length > MAX_ENV_VALUE) {
        this.fail(`${field}.${name}`, `a string without NUL, at most ${MAX_ENV_VALUE} characters`, value);
        return undefined;
      }
      out[name] = value;
    }
    return out;
  }

  limits(field: string): SessionLimits | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    const inner = new FieldReader(v, field);
    const out: SessionLimits = {};
    const min = SESSION_LIMIT_MINIMUMS;
    // Below its minimum no sandbox can start, so the limit is refused here rather than at the first run.
    const atLeast = (key: keyof typeof min, unit?: string): number | undefined =>
      inner.number(key, { min: min[key], integer: true, unit: `${unit ? `${unit}; ` : ''}no sandbox can start with less` }, `${field}.${key}`);
    assign(out, 'output_bytes', inner.number('output_bytes', { min: 1, integer: true, unit: 'bytes' }, `${field}.output_bytes`));
    assign(out, 'processes', atLeast('processes', 'tasks'));
    assign(out, 'open_files', atLeast('open_files'));
    assign(out, 'file_size', atLeast('file_size', 'bytes'));
    assign(out, 'memory_bytes', atLeast('memory_bytes', 'bytes'));
    assign(out, 'cpu', inner.number('cpu', { min: 0.01, max: 1024, unit: 'CPUs' }, `${field}.cpu`));
    assign(out, 'cpu_time', inner.number('cpu_time', { min: 0, exclusiveMin: true, unit: 'seconds' }, `${field}.cpu_time`));
    assign(out, 'disk_bytes', atLeast('disk_bytes', 'bytes'));
    assign(out, 'inodes', atLeast('inodes'));
    inner.rejectUnknown(Object.keys(SESSION_LIMITS_SCHEMA.properties), `${field}.`);
    const r = inner.result(out);
    if (!r.ok) {
      this.failure ??= r;
      return undefined;
    }
    return r.value;
  }

  rejectUnknown(known: readonly string[], prefix = ''): void {
    for (const key of Object.keys(this.obj)) {
      if (!known.includes(key)) {
        this.failure ??= {
          ok: false,
          code: 'INVALID_REQUEST',
          message: `${prefix}${key}: unknown field; expected one of ${known.join(', ')}`,
        };
      }
    }
  }

  result<T>(value: T): Validated<T> {
    return this.failure ?? { ok: true, value };
  }
}
