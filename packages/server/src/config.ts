/**
 * Server configuration: embedded defaults, overridden by environment variables (and by the
 * CLI's flags, which set the same fields). Every value is validated once, here.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

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
  /** Executions that may wait behind the running one in a session. */
  maxQueue: number;
  /** How long a finished execution's log stays readable, seconds. */
  logRetentionSec: number;
  /** Serialised bytes of all finished executions' logs kept; the oldest are forgotten first. */
  logBudgetBytes: number;
  /** Whether a session may ask for `network: true`. */
  allowNetwork: boolean;
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
}

const MiB = 1024 * 1024;

/** The embedded defaults. */
export function defaultConfig(): ServerConfig {
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
    maxQueue: 16,
    logRetentionSec: 3600,
    logBudgetBytes: 512 * MiB,
    allowNetwork: false,
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
  };
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
  SLUICE_MAX_QUEUE: ['maxQueue', 'int'],
  SLUICE_LOG_RETENTION: ['logRetentionSec', 'number'],
  SLUICE_LOG_BUDGET: ['logBudgetBytes', 'int'],
  SLUICE_ALLOW_NETWORK: ['allowNetwork', 'bool'],
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
};

/** Names of the environment variables the server reads. */
export const CONFIG_ENV_VARS = Object.keys(ENV);

/** Builds the config from defaults, the environment, then explicit overrides; throws on bad values. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const cfg = defaultConfig();
  const target = cfg as unknown as Record<string, unknown>;
  for (const [name, [field, kind]] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    target[field] = parseEnv(name, raw, kind);
  }
  Object.assign(cfg, overrides);
  validateConfig(cfg);
  return cfg;
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
    'uidCount', 'processes', 'openFiles', 'fileSizeBytes', 'tmpBytes',
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !(v > 0)) throw new Error(`config ${k}: expected a positive number, got ${String(v)}`);
  }
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new Error(`PORT: expected 0-65535, got ${c.port}`);
  if (c.killGraceMs < 0) throw new Error(`SLUICE_KILL_GRACE_MS: expected >= 0, got ${c.killGraceMs}`);
  if (c.defaultTimeoutSec > c.maxTimeoutSec) c.defaultTimeoutSec = c.maxTimeoutSec;
  if (c.outputLimitBytes > c.maxOutputLimitBytes) c.maxOutputLimitBytes = c.outputLimitBytes;
  if (c.outputKillBytes < c.outputLimitBytes) c.outputKillBytes = c.outputLimitBytes;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(c.logLevel)) {
    throw new Error(`SLUICE_LOG_LEVEL: expected fatal, error, warn, info, debug, trace or silent, got ${JSON.stringify(c.logLevel)}`);
  }
}
