/**
 * Server configuration: embedded defaults, overridden by environment variables (and by the
 * CLI's flags, which set the same fields). Every value is validated once, here.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LANGUAGES, MAX_AGENT_TURNS, MIN_HEARTBEAT_SEC, SESSION_LIMIT_MINIMUMS } from '@sluice/protocol';
import { checkUniqueKeys, parseAPIKeys, type APIKey } from './internal/auth/api-keys.js';
import { exposureProblem } from './internal/auth/exposure.js';

export interface ServerConfig {
  host: string;
  port: number;
  /** Workspaces and the sandbox's synthetic /etc live here. */
  dataDir: string;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** Default and maximum execution timeout, seconds. Larger requests are capped. */
  defaultTimeoutSec: number;
  maxTimeoutSec: number;
  /** Default idle TTL of a session, seconds, and its cap. */
  idleTTLSec: number;
  maxIdleTTLSec: number;
  /** SSE heartbeat period, seconds. */
  heartbeatSec: number;
  /** Time between SIGTERM and SIGKILL when stopping an execution, ms. */
  killGraceMs: number;
  /** Output bytes kept per execution (default and cap of `limits.output_bytes`). */
  outputLimitBytes: number;
  maxOutputLimitBytes: number;
  /** Total bytes a program may write before it is killed with reason `output_limit`. */
  outputKillBytes: number;
  /** Largest request body. */
  bodyLimitBytes: number;
  /** Largest file upload through the files API. */
  maxUploadBytes: number;
  /** Executions that may wait behind the running one in a session. */
  maxQueue: number;
  /** How long a finished execution's log stays readable, seconds. */
  logRetentionSec: number;
  /** Memory of all executions' event logs, running and finished (see log-budget.ts for what goes past it). */
  logBudgetBytes: number;
  /** Disk for finished logs spilled under `<dataDir>/logs` (0: they stay in memory); see log-disk.ts. */
  logDiskBytes: number;
  /** Whether a session may ask for `network: true`. */
  allowNetwork: boolean;
  /** Bearer keys, one per tenant; empty turns authentication off (then only loopback may listen). */
  apiKeys: APIKey[];
  /** Allows listening on a non-loopback address without keys (something else guards it). */
  insecureNoAuth: boolean;
  /** Sandboxes (sessions with an execution running or queued) at once: server-wide and per tenant. */
  maxRunning: number;
  maxRunningPerTenant: number;
  /** Kernels (long-lived interpreters) up at once; past it the least recently used idle one is stopped. */
  maxKernels: number;
  /** Comma-separated languages this server offers ('' = every installed one); the others answer UNSUPPORTED_LANGUAGE. */
  languages: string;
  /** Builds the typescript and java compiler caches in the background at start (a few CPU seconds). */
  warmRuntimes: boolean;
  /** Sessions at once: server-wide and per tenant. */
  maxSessions: number;
  maxSessionsPerTenant: number;
  /**
   * Pre-started session shells (a uid, an empty workspace, a process sandbox and a Python
   * kernel waiting, all for the default settings) that new sessions adopt; 0: none.
   */
  poolSize: number;
  /** Seconds a client has to send its request headers, and its whole request. */
  headersTimeoutSec: number;
  requestTimeoutSec: number;
  /** Seconds an idle keep-alive connection stays open. */
  keepAliveTimeoutSec: number;
  /** Open connections at once; more are closed as they arrive. */
  maxConnections: number;
  /** Seconds a stopping server lets running executions finish before cancelling them. */
  drainGraceSec: number;
  /** Host uids for sandboxes (one per session) when the server runs as root. */
  uidBase: number;
  uidCount: number;
  /** Per-session rlimit defaults and caps. */
  processes: number;
  maxProcesses: number;
  openFiles: number;
  maxOpenFiles: number;
  fileSizeBytes: number;
  maxFileSizeBytes: number;
  /** Size of each sandbox's private /tmp. */
  tmpBytes: number;
  /** Per-session resource limits (cgroups where the host has them): defaults and caps. */
  memoryBytes: number;
  maxMemoryBytes: number;
  cpu: number;
  maxCPU: number;
  /** CPU-time budget per execution, seconds (0 = none). */
  cpuTimeSec: number;
  maxCPUTimeSec: number;
  diskBytes: number;
  maxDiskBytes: number;
  inodes: number;
  maxInodes: number;
  /** The model endpoint of agent runs (OpenAI-compatible, e.g. `https://api.openai.com/v1`); '' = agent runs are off. */
  llmBaseURL: string;
  /** Its key (sent only to that endpoint, as `Authorization: Bearer`); '' = none (local servers). */
  llmAPIKey: string;
  /** The default model, and the comma-separated others a request may pick. */
  llmModel: string;
  llmModels: string;
  /** Seconds the endpoint may send nothing before a call fails as stalled. */
  llmIdleTimeoutSec: number;
  /** Turns an agent run takes by default, and the most a request may ask for. */
  agentDefaultTurns: number;
  agentMaxTurns: number;
  /** Agent runs at once: server-wide and per tenant. */
  maxAgentRuns: number;
  maxAgentRunsPerTenant: number;
  /** Characters of one tool result sent back to the model (head and tail kept past it). */
  agentToolOutputChars: number;
  /**
   * Redis for scale-out (docs/scale-out.md), `redis://` or `rediss://`; '' = none, one process
   * keeps everything in memory and on disk, as without it.
   */
  redisURL: string;
  /**
   * What this process does (docs/scale-out.md): `all` (one process: the API and the sandboxes),
   * `api` (answers requests, runs no code) or `worker` (runs sandboxes); `api` and `worker` need
   * `redisURL` (config validation refuses them without it).
   */
  role: ServerRole;
  /** How API nodes reach this worker's internal endpoint; '' = derived from host and port (see workerURL). */
  workerURL: string;
}

/** The roles of `sluice serve --role`. */
export const SERVER_ROLES = ['all', 'api', 'worker'] as const;
export type ServerRole = (typeof SERVER_ROLES)[number];

const MiB = 1024 * 1024;

/** Pre-started shells at most: each holds a uid, a workspace, a sandbox and a kernel (~30 MiB). */
const MAX_POOL_SIZE = 64;

/** Sandboxes per CPU core: most sandboxed programs wait on I/O or sleep as much as they compute. */
const RUNNING_PER_CORE = 4;

/** The embedded defaults. */
export function defaultConfig(): ServerConfig {
  const maxRunning = RUNNING_PER_CORE * availableParallelism();
  const maxSessions = 128;
  return {
    host: '127.0.0.1',
    port: 8080,
    dataDir: join(tmpdir(), 'sluice'),
    logLevel: 'info',
    defaultTimeoutSec: 60,
    maxTimeoutSec: 3600,
    idleTTLSec: 15 * 60,
    maxIdleTTLSec: 24 * 3600,
    heartbeatSec: 15,
    killGraceMs: 2000,
    outputLimitBytes: 16 * MiB,
    maxOutputLimitBytes: 64 * MiB,
    outputKillBytes: 1024 * MiB,
    bodyLimitBytes: 2 * MiB,
    maxUploadBytes: 64 * MiB,
    maxQueue: 16,
    logRetentionSec: 3600,
    logBudgetBytes: 512 * MiB,
    logDiskBytes: 2048 * MiB,
    allowNetwork: false,
    apiKeys: [],
    insecureNoAuth: false,
    maxRunning,
    maxRunningPerTenant: perTenantRunning(maxRunning),
    maxKernels: 64,
    warmRuntimes: true,
    languages: '',
    maxSessions,
    maxSessionsPerTenant: perTenantSessions(maxSessions),
    poolSize: 2,
    headersTimeoutSec: 10,
    requestTimeoutSec: 30,
    keepAliveTimeoutSec: 72,
    maxConnections: 1024,
    drainGraceSec: 30,
    uidBase: 610000,
    uidCount: 4096,
    processes: 256,
    maxProcesses: 4096,
    openFiles: 256,
    maxOpenFiles: 4096,
    fileSizeBytes: 64 * MiB,
    maxFileSizeBytes: 1024 * MiB,
    tmpBytes: 64 * MiB,
    memoryBytes: 512 * MiB,
    maxMemoryBytes: 8192 * MiB,
    cpu: 1,
    maxCPU: Math.max(1, availableParallelism()),
    cpuTimeSec: 0,
    maxCPUTimeSec: 24 * 3600,
    diskBytes: 256 * MiB,
    maxDiskBytes: 4096 * MiB,
    inodes: 16384,
    maxInodes: 1_000_000,
    llmBaseURL: '',
    llmAPIKey: '',
    llmModel: '',
    llmModels: '',
    llmIdleTimeoutSec: 120,
    agentDefaultTurns: 10,
    agentMaxTurns: 50,
    maxAgentRuns: 64,
    maxAgentRunsPerTenant: 16,
    agentToolOutputChars: 16 * 1024,
    redisURL: '',
    role: 'all',
    workerURL: '',
  };
}

/** A tenant may take half the sandboxes, so one tenant alone cannot starve the others. */
function perTenantRunning(maxRunning: number): number {
  return Math.ceil(maxRunning / 2);
}

/** A tenant may hold a quarter of the sessions. */
function perTenantSessions(maxSessions: number): number {
  return Math.ceil(maxSessions / 4);
}

/** Environment variable → config field, with how to read it. */
const ENV: Record<string, [keyof ServerConfig, 'string' | 'int' | 'number' | 'bool']> = {
  HOST: ['host', 'string'],
  PORT: ['port', 'int'],
  SLUICE_DATA_DIR: ['dataDir', 'string'],
  SLUICE_LOG_LEVEL: ['logLevel', 'string'],
  SLUICE_DEFAULT_TIMEOUT: ['defaultTimeoutSec', 'number'],
  SLUICE_MAX_TIMEOUT: ['maxTimeoutSec', 'number'],
  SLUICE_IDLE_TTL: ['idleTTLSec', 'number'],
  SLUICE_HEARTBEAT: ['heartbeatSec', 'number'],
  SLUICE_KILL_GRACE_MS: ['killGraceMs', 'int'],
  SLUICE_OUTPUT_LIMIT: ['outputLimitBytes', 'int'],
  SLUICE_MAX_OUTPUT_LIMIT: ['maxOutputLimitBytes', 'int'],
  SLUICE_OUTPUT_KILL_BYTES: ['outputKillBytes', 'int'],
  SLUICE_BODY_LIMIT: ['bodyLimitBytes', 'int'],
  SLUICE_MAX_UPLOAD: ['maxUploadBytes', 'int'],
  SLUICE_MAX_QUEUE: ['maxQueue', 'int'],
  SLUICE_LOG_RETENTION: ['logRetentionSec', 'number'],
  SLUICE_LOG_BUDGET: ['logBudgetBytes', 'int'],
  SLUICE_LOG_DISK_BYTES: ['logDiskBytes', 'int'],
  SLUICE_ALLOW_NETWORK: ['allowNetwork', 'bool'],
  SLUICE_INSECURE_NO_AUTH: ['insecureNoAuth', 'bool'],
  SLUICE_MAX_RUNNING: ['maxRunning', 'int'],
  SLUICE_MAX_RUNNING_PER_TENANT: ['maxRunningPerTenant', 'int'],
  SLUICE_MAX_SESSIONS: ['maxSessions', 'int'],
  SLUICE_MAX_KERNELS: ['maxKernels', 'int'],
  SLUICE_POOL_SIZE: ['poolSize', 'int'],
  SLUICE_WARM_RUNTIMES: ['warmRuntimes', 'bool'],
  SLUICE_LANGUAGES: ['languages', 'string'],
  SLUICE_MAX_SESSIONS_PER_TENANT: ['maxSessionsPerTenant', 'int'],
  SLUICE_HEADERS_TIMEOUT: ['headersTimeoutSec', 'number'],
  SLUICE_REQUEST_TIMEOUT: ['requestTimeoutSec', 'number'],
  SLUICE_KEEP_ALIVE_TIMEOUT: ['keepAliveTimeoutSec', 'number'],
  SLUICE_MAX_CONNECTIONS: ['maxConnections', 'int'],
  SLUICE_DRAIN_GRACE: ['drainGraceSec', 'number'],
  SLUICE_UID_BASE: ['uidBase', 'int'],
  SLUICE_UID_COUNT: ['uidCount', 'int'],
  SLUICE_MEMORY: ['memoryBytes', 'int'],
  SLUICE_MAX_MEMORY: ['maxMemoryBytes', 'int'],
  SLUICE_CPU: ['cpu', 'number'],
  SLUICE_MAX_CPU: ['maxCPU', 'number'],
  SLUICE_CPU_TIME: ['cpuTimeSec', 'number'],
  SLUICE_DISK: ['diskBytes', 'int'],
  SLUICE_MAX_DISK: ['maxDiskBytes', 'int'],
  SLUICE_INODES: ['inodes', 'int'],
  SLUICE_MAX_INODES: ['maxInodes', 'int'],
  SLUICE_LLM_BASE_URL: ['llmBaseURL', 'string'],
  SLUICE_LLM_API_KEY: ['llmAPIKey', 'string'],
  SLUICE_LLM_MODEL: ['llmModel', 'string'],
  SLUICE_LLM_MODELS: ['llmModels', 'string'],
  SLUICE_LLM_TIMEOUT: ['llmIdleTimeoutSec', 'number'],
  SLUICE_AGENT_TURNS: ['agentDefaultTurns', 'int'],
  SLUICE_AGENT_MAX_TURNS: ['agentMaxTurns', 'int'],
  SLUICE_MAX_AGENT_RUNS: ['maxAgentRuns', 'int'],
  SLUICE_MAX_AGENT_RUNS_PER_TENANT: ['maxAgentRunsPerTenant', 'int'],
  SLUICE_AGENT_TOOL_OUTPUT: ['agentToolOutputChars', 'int'],
  SLUICE_REDIS_URL: ['redisURL', 'string'],
  SLUICE_ROLE: ['role', 'string'],
  SLUICE_WORKER_URL: ['workerURL', 'string'],
};

/** Names of the environment variables the server reads. */
export const CONFIG_ENV_VARS = [...Object.keys(ENV), 'SLUICE_API_KEYS', 'SLUICE_API_KEYS_FILE'];

/** Builds the config from defaults, the environment, then explicit overrides; throws on bad values. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const cfg = defaultConfig();
  const target = cfg as unknown as Record<string, unknown>;
  for (const [name, [field, kind]] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    target[field] = parseEnv(name, raw, kind);
  }
  cfg.apiKeys = readAPIKeys(env);
  Object.assign(cfg, overrides);
  // Per-tenant caps not given follow the server-wide ones they derive from.
  const given = (field: keyof ServerConfig, envName: string): boolean => field in overrides || (env[envName] ?? '') !== '';
  if (!given('maxRunningPerTenant', 'SLUICE_MAX_RUNNING_PER_TENANT')) cfg.maxRunningPerTenant = perTenantRunning(cfg.maxRunning);
  if (!given('maxSessionsPerTenant', 'SLUICE_MAX_SESSIONS_PER_TENANT')) cfg.maxSessionsPerTenant = perTenantSessions(cfg.maxSessions);
  validateConfig(cfg);
  return cfg;
}

/** Keys from `SLUICE_API_KEYS` (comma-separated) and the file `SLUICE_API_KEYS_FILE` (one per line). */
function readAPIKeys(env: NodeJS.ProcessEnv): APIKey[] {
  const keys: APIKey[] = [];
  const list = env['SLUICE_API_KEYS'];
  if (list !== undefined && list !== '') keys.push(...parseAPIKeys(list, 'SLUICE_API_KEYS', 'comma'));
  const file = env['SLUICE_API_KEYS_FILE'];
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`SLUICE_API_KEYS_FILE: could not read ${file}: ${(err as Error).message}`);
    }
    const fromFile = parseAPIKeys(text, `SLUICE_API_KEYS_FILE (${file})`, 'line');
    if (fromFile.length === 0) throw new Error(`SLUICE_API_KEYS_FILE: ${file} holds no keys; write one key (or name:key) per line`);
    keys.push(...fromFile);
  }
  return keys;
}

function parseEnv(name: string, raw: string, kind: 'string' | 'int' | 'number' | 'bool'): string | number | boolean {
  switch (kind) {
    case 'string':
      return raw;
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new Error(`${name}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'int':
    case 'number': {
      const n = Number(raw);
      if (!Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) {
        throw new Error(`${name}: expected ${kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`);
      }
      return n;
    }
  }
}

function validateConfig(c: ServerConfig): void {
  const positive: (keyof ServerConfig)[] = [
    'defaultTimeoutSec', 'maxTimeoutSec', 'idleTTLSec', 'maxIdleTTLSec', 'heartbeatSec', 'outputLimitBytes',
    'maxOutputLimitBytes', 'outputKillBytes', 'bodyLimitBytes', 'maxQueue', 'logRetentionSec', 'logBudgetBytes',
    'uidCount', 'processes', 'openFiles', 'fileSizeBytes', 'tmpBytes', 'maxRunning', 'maxRunningPerTenant', 'maxSessions',
    'maxSessionsPerTenant', 'headersTimeoutSec', 'requestTimeoutSec', 'keepAliveTimeoutSec', 'maxConnections',
    'llmIdleTimeoutSec', 'agentDefaultTurns', 'agentMaxTurns', 'maxAgentRuns', 'maxAgentRunsPerTenant', 'agentToolOutputChars',
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !(v > 0)) throw new Error(`config ${k}: expected a positive number, got ${String(v)}`);
  }
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new Error(`PORT: expected 0-65535, got ${c.port}`);
  if (!Number.isInteger(c.logDiskBytes) || c.logDiskBytes < 0) throw new Error(`SLUICE_LOG_DISK_BYTES: expected bytes >= 0 (0 keeps finished logs in memory), got ${c.logDiskBytes}`);
  if (c.killGraceMs < 0) throw new Error(`SLUICE_KILL_GRACE_MS: expected >= 0, got ${c.killGraceMs}`);
  if (!Number.isInteger(c.poolSize) || c.poolSize < 0 || c.poolSize > MAX_POOL_SIZE) {
    throw new Error(`SLUICE_POOL_SIZE: expected an integer from 0 (no pool) to ${MAX_POOL_SIZE}, got ${c.poolSize}`);
  }
  if (!(c.drainGraceSec >= 0)) throw new Error(`SLUICE_DRAIN_GRACE: expected seconds >= 0, got ${c.drainGraceSec}`);
  for (const k of ['maxRunning', 'maxRunningPerTenant', 'maxSessions', 'maxSessionsPerTenant', 'maxConnections'] as const) {
    if (!Number.isInteger(c[k])) throw new Error(`config ${k}: expected an integer, got ${c[k]}`);
  }
  if (c.heartbeatSec < MIN_HEARTBEAT_SEC) throw new Error(`SLUICE_HEARTBEAT: expected at least ${MIN_HEARTBEAT_SEC} s, got ${c.heartbeatSec}`);
  checkLimitMinimums(c);
  if (c.headersTimeoutSec > c.requestTimeoutSec) {
    throw new Error(`SLUICE_HEADERS_TIMEOUT: expected at most SLUICE_REQUEST_TIMEOUT (${c.requestTimeoutSec} s), got ${c.headersTimeoutSec}`);
  }
  if (c.maxRunningPerTenant > c.maxRunning) c.maxRunningPerTenant = c.maxRunning;
  if (c.maxSessionsPerTenant > c.maxSessions) c.maxSessionsPerTenant = c.maxSessions;
  if (c.maxAgentRunsPerTenant > c.maxAgentRuns) c.maxAgentRunsPerTenant = c.maxAgentRuns;
  if (c.agentMaxTurns > MAX_AGENT_TURNS) throw new Error(`SLUICE_AGENT_MAX_TURNS: expected at most ${MAX_AGENT_TURNS}, got ${c.agentMaxTurns}`);
  if (c.agentDefaultTurns > c.agentMaxTurns) c.agentDefaultTurns = c.agentMaxTurns;
  for (const k of ['agentDefaultTurns', 'agentMaxTurns', 'maxAgentRuns', 'maxAgentRunsPerTenant'] as const) {
    if (!Number.isInteger(c[k])) throw new Error(`config ${k}: expected an integer, got ${c[k]}`);
  }
  if (c.llmBaseURL !== '') {
    let url: URL;
    try {
      url = new URL(c.llmBaseURL);
    } catch {
      throw new Error(`SLUICE_LLM_BASE_URL: expected an http(s) URL such as https://api.openai.com/v1, got ${JSON.stringify(c.llmBaseURL)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`SLUICE_LLM_BASE_URL: expected an http(s) URL, got ${JSON.stringify(c.llmBaseURL)}`);
    if (c.llmModel === '') throw new Error('SLUICE_LLM_MODEL: expected the default model name (e.g. gpt-4o-mini) when SLUICE_LLM_BASE_URL is set');
  }
  if (c.redisURL !== '') checkRedisURL(c.redisURL);
  checkRole(c);
  for (const l of enabledLanguages(c) ?? []) {
    if (!(LANGUAGES as readonly string[]).includes(l)) throw new Error(`SLUICE_LANGUAGES: expected names from ${LANGUAGES.join(', ')}, got ${JSON.stringify(l)}`);
  }
  checkUniqueKeys(c.apiKeys);
  const exposed = exposureProblem(c);
  if (exposed) throw new Error(exposed);
  if (c.defaultTimeoutSec > c.maxTimeoutSec) c.defaultTimeoutSec = c.maxTimeoutSec;
  if (c.outputLimitBytes > c.maxOutputLimitBytes) c.maxOutputLimitBytes = c.outputLimitBytes;
  if (c.outputKillBytes < c.outputLimitBytes) c.outputKillBytes = c.outputLimitBytes;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(c.logLevel)) {
    throw new Error(`SLUICE_LOG_LEVEL: expected fatal, error, warn, info, debug, trace or silent, got ${JSON.stringify(c.logLevel)}`);
  }
}

/** Throws unless `url` is a redis:// or rediss:// URL; the message never repeats a password it holds. */
function checkRedisURL(url: string): void {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // Reported below without the text, which may hold a password.
  }
  if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
    const scheme = parsed ? ` (got scheme ${JSON.stringify(parsed.protocol)})` : '';
    throw new Error(`SLUICE_REDIS_URL: expected redis://[user:password@]host[:port][/db] or rediss://…${scheme}; unset it to run without Redis`);
  }
}

/** Throws unless the role is known, has the Redis it needs, and SLUICE_WORKER_URL (when set) is an http(s) URL. */
function checkRole(c: ServerConfig): void {
  if (!(SERVER_ROLES as readonly string[]).includes(c.role)) {
    throw new Error(`SLUICE_ROLE (--role): expected ${SERVER_ROLES.join(', ')}, got ${JSON.stringify(c.role)}`);
  }
  if (c.role !== 'all' && c.redisURL === '') {
    throw new Error(`SLUICE_ROLE (--role) ${c.role}: needs SLUICE_REDIS_URL, where API nodes and workers meet; set it, or use the role all for one process`);
  }
  if (c.workerURL !== '') {
    let url: URL | null = null;
    try {
      url = new URL(c.workerURL);
    } catch {
      // Reported below.
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Error(`SLUICE_WORKER_URL: expected an http(s) URL API nodes can reach, such as http://10.0.0.5:8080, got ${JSON.stringify(c.workerURL)}`);
    }
  }
}

/**
 * How API nodes reach this worker: SLUICE_WORKER_URL, else http://HOST:PORT, with the machine's
 * host name for a wildcard HOST (0.0.0.0, ::), which no other machine can dial. `port` is the one
 * actually listened on (PORT may be 0).
 */
export function workerURL(c: Pick<ServerConfig, 'workerURL' | 'host' | 'port'>, port: number = c.port): string {
  if (c.workerURL !== '') return c.workerURL.replace(/\/+$/, '');
  const wildcard = c.host === '0.0.0.0' || c.host === '::' || c.host === '';
  const host = wildcard ? hostname() : c.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Session limit defaults and caps → the request field whose minimum they must meet, and how an operator names them. */
const LIMIT_SETTINGS: [keyof typeof SESSION_LIMIT_MINIMUMS, keyof ServerConfig, string][] = [
  ['processes', 'processes', 'config processes'],
  ['processes', 'maxProcesses', 'config maxProcesses'],
  ['open_files', 'openFiles', 'config openFiles'],
  ['open_files', 'maxOpenFiles', 'config maxOpenFiles'],
  ['file_size', 'fileSizeBytes', 'config fileSizeBytes'],
  ['file_size', 'maxFileSizeBytes', 'config maxFileSizeBytes'],
  ['memory_bytes', 'memoryBytes', 'SLUICE_MEMORY'],
  ['memory_bytes', 'maxMemoryBytes', 'SLUICE_MAX_MEMORY'],
  ['disk_bytes', 'diskBytes', 'SLUICE_DISK'],
  ['disk_bytes', 'maxDiskBytes', 'SLUICE_MAX_DISK'],
  ['inodes', 'inodes', 'SLUICE_INODES'],
  ['inodes', 'maxInodes', 'SLUICE_MAX_INODES'],
];

/** A default or cap below a limit's minimum would leave every session unable to start a sandbox. */
function checkLimitMinimums(c: ServerConfig): void {
  for (const [limit, field, name] of LIMIT_SETTINGS) {
    const v = c[field];
    const min = SESSION_LIMIT_MINIMUMS[limit];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new Error(`${name}: expected an integer >= ${min} (no sandbox can start with less), got ${String(v)}`);
    }
  }
}

/** The languages SLUICE_LANGUAGES names, or null when it names none (every installed one). */
export function enabledLanguages(c: Pick<ServerConfig, 'languages'>): string[] | null {
  const names = c.languages.split(',').map((l) => l.trim()).filter((l) => l !== '');
  return names.length > 0 ? names : null;
}

/** The models an agent request may name: the default first, then SLUICE_LLM_MODELS. */
export function allowedModels(c: Pick<ServerConfig, 'llmModel' | 'llmModels'>): string[] {
  const extra = c.llmModels.split(',').map((m) => m.trim()).filter((m) => m !== '');
  return [...new Set([c.llmModel, ...extra].filter((m) => m !== ''))];
}
