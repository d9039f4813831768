/**
 * Runs an agent's tool calls in its session: `run_code` as an ordinary execution of the session
 * (queued like any other, visible at /api/executions/{id}), whose events are relayed live as
 * `tool_output_delta` / `tool_progress` / `tool_result`; the file tools through the files API's
 * safe workspace access. What the model is told is bounded (head and tail kept).
 */
import type { ExecutionEvent, OutputStream, RunRequest, ToolEndReason } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { ExecutionHandle, SessionFiles } from '../backend/backend.js';
import { parseWorkspacePath } from '../files/workspace-path.js';
import type { ToolCall } from './agent-tools.js';
import { HeadTailText } from './head-tail-text.js';

/** Where a running tool's live events go. */
export interface ToolEmitter {
  /** `seq` is the execution event's (strictly increasing within one run). */
  output(stream: OutputStream, text: string, executionID: string, seq: number): void;
  progress(executionID: string, fields: { message?: string; percent?: number; data?: unknown }, seq: number): void;
  result(executionID: string, data: Record<string, unknown>, seq: number): void;
}

/** How a tool call ended: `output` is what the model is told. */
export interface ToolOutcome {
  output: string;
  exitCode: number | null;
  reason: ToolEndReason;
  executionID?: string;
}

/** How a run ended, with what it printed (each bounded) and its rich results (at most MAX_RICH_RESULTS). */
export interface RunOutcome extends ToolOutcome {
  executionID: string;
  stdout: string;
  stderr: string;
  results: Record<string, unknown>[];
  durationMs: number | null;
}

/** Runs checked tool calls; aborting `signal` stops a running one (its whole process tree). */
export interface ToolHost {
  run(call: ToolCall, emit: ToolEmitter, signal: AbortSignal): Promise<ToolOutcome>;
}

/** What a tool needs of an execution it queued: follow its log, cancel it. */
export type SubmittedRun = Pick<ExecutionHandle, 'id' | 'log' | 'cancel'>;

export interface SessionToolsDeps {
  /** The session's workspace. */
  files: SessionFiles;
  /** Queues code in the session like a run request (the server's own admission rules apply). */
  submit(request: RunRequest): Promise<SubmittedRun>;
  /** Language of `run_code` when the model names none. */
  defaultLanguage: string;
  /** Seconds each `run_code` may take (undefined: the session's). */
  timeoutSec: number | undefined;
  /** Characters of a tool result the model gets. */
  maxOutputChars: number;
  killGraceMs: number;
}

/** Bytes of a file `read_file` reads at most (what the model sees is bounded again by maxOutputChars). */
const MAX_READ_BYTES = 1024 * 1024;
/** Rich results a run's outcome keeps (each is already bounded by the output limit). */
const MAX_RICH_RESULTS = 64;

export class SessionTools implements ToolHost {
  constructor(private readonly deps: SessionToolsDeps) {}

  async run(call: ToolCall, emit: ToolEmitter, signal: AbortSignal): Promise<ToolOutcome> {
    try {
      switch (call.tool) {
        case 'run_code':
          return await this.runCode(call.code, call.language ?? this.deps.defaultLanguage, emit, signal);
        case 'read_file':
          return ok(this.bound(await this.readFile(call.path)));
        case 'write_file':
          await this.deps.files.write(segments(call.path, 'path'), Buffer.from(call.content, 'utf8'));
          return ok(`wrote ${Buffer.byteLength(call.content)} bytes to ${call.path}`);
        case 'list_files': {
          const entries = await this.deps.files.list(segments(call.dir, 'dir'));
          const lines = entries.map((e) => `${e.type === 'directory' ? `${e.path}/` : e.path}\t${e.type}\t${e.size}`);
          return ok(this.bound(lines.length === 0 ? '(empty directory)' : lines.join('\n')));
        }
      }
    } catch (err) {
      // A refusal (no such file, a bad path, no free sandbox…) is the model's to handle.
      if (err instanceof ApiError) return { output: `error: ${err.message}`, exitCode: 1, reason: 'error' };
      throw err;
    }
  }

  private async runCode(code: string, language: string, emit: ToolEmitter, signal: AbortSignal): Promise<ToolOutcome> {
    const request: RunRequest = { code, language };
    if (this.deps.timeoutSec !== undefined) request.timeout = this.deps.timeoutSec;
    const { output, exitCode, reason, executionID } = await this.execute(request, emit, signal);
    return { output, exitCode, reason, executionID };
  }

  /**
   * Runs a request as an execution of the session, relaying its events live to `emit` (each
   * with its seq), and returns the outcome with what it printed and its rich results: what
   * `run_code` tells the model, and what an MCP tool result is made of.
   */
  async execute(request: RunRequest, emit: ToolEmitter, signal: AbortSignal): Promise<RunOutcome> {
    signal.throwIfAborted();
    if (request.timeout === undefined && this.deps.timeoutSec !== undefined) request = { ...request, timeout: this.deps.timeoutSec };
    const exec = await this.deps.submit(request);
    // A cancel that fails is not this call's to report: the log is followed to `done` either way.
    const cancel = (): void => void exec.cancel(this.deps.killGraceMs).catch(() => {});
    signal.addEventListener('abort', cancel, { once: true });
    const stdout = new HeadTailText(this.deps.maxOutputChars);
    const stderr = new HeadTailText(this.deps.maxOutputChars);
    // Bounded too: a flood of truncations or gaps says so once each, counted.
    const notes: string[] = [];
    const results = new HeadTailText(this.deps.maxOutputChars);
    const rich: Record<string, unknown>[] = [];
    let richDropped = 0;
    let done: Extract<ExecutionEvent, { type: 'done' }> | null = null;
    try {
      // Followed to `done` even after an abort: tool_end must come after the processes are gone.
      for await (const batch of exec.log.follow(1)) {
        for (const entry of batch) {
          const ev = JSON.parse(entry.json) as ExecutionEvent;
          switch (ev.type) {
            case 'start':
              break;
            case 'stdout':
              stdout.append(ev.content);
              emit.output('stdout', ev.content, exec.id, ev.seq);
              break;
            case 'stderr':
              stderr.append(ev.content);
              emit.output('stderr', ev.content, exec.id, ev.seq);
              break;
            case 'progress': {
              const { type: _t, seq: _s, ts: _ts, ...fields } = ev;
              emit.progress(exec.id, fields, ev.seq);
              break;
            }
            case 'result': {
              emit.result(exec.id, ev.data, ev.seq);
              const text = ev.data['text/plain'];
              const mimes = Object.keys(ev.data).join(', ');
              results.append(`${results.empty ? '' : '\n'}${typeof text === 'string' ? text : `(a result of type ${mimes})`}`);
              if (rich.length < MAX_RICH_RESULTS) rich.push(ev.data);
              else richDropped++;
              break;
            }
            case 'truncated':
              notes.push(`${ev.dropped_bytes} bytes of ${ev.stream} went over the output limit and are not shown`);
              break;
            case 'gap':
              notes.push(`events ${ev.from_seq}-${ev.to_seq} of the execution were dropped from its bounded log`);
              break;
            case 'error':
              notes.push(`error: ${ev.error} (${ev.code})`);
              break;
            case 'done':
              done = ev;
              break;
            default: {
              const never: never = ev;
              throw new Error(`unexpected execution event ${JSON.stringify(never)}`);
            }
          }
        }
      }
    } finally {
      signal.removeEventListener('abort', cancel);
    }
    if (richDropped > 0) notes.push(`${richDropped} more rich results are not included (at most ${MAX_RICH_RESULTS}); GET /api/executions/${exec.id} has them`);
    const reason: ToolEndReason = done?.reason ?? 'error';
    const exitCode = done?.exit_code ?? null;
    const parts: string[] = [`exit_code: ${exitCode === null ? 'none' : exitCode} (${reason}${done?.signal ? `, ${done.signal}` : ''})`];
    if (!stdout.empty) parts.push(`stdout:\n${stdout.toString()}`);
    if (!stderr.empty) parts.push(`stderr:\n${stderr.toString()}`);
    if (!results.empty) parts.push(`result:\n${results.toString()}`);
    if (done?.kernel_restarted) parts.push('note: the kernel restarted during this run; variables and imports from earlier calls are gone');
    for (const n of notes) parts.push(`note: ${n}`);
    return {
      output: this.bound(parts.join('\n')),
      exitCode,
      reason,
      executionID: exec.id,
      stdout: stdout.toString(),
      stderr: stderr.toString(),
      results: rich,
      durationMs: done?.duration_ms ?? null,
    };
  }

  private async readFile(path: string): Promise<string> {
    const file = await this.deps.files.open(segments(path, 'path'));
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of file.stream) {
        const b = chunk as Buffer;
        chunks.push(b);
        bytes += b.length;
        if (bytes >= MAX_READ_BYTES) break;
      }
    } finally {
      file.stream.destroy();
    }
    const text = new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks).subarray(0, MAX_READ_BYTES));
    return file.size > MAX_READ_BYTES ? `${text}\n[… the file has ${file.size} bytes; only the first ${MAX_READ_BYTES} were read]` : text;
  }

  private bound(text: string): string {
    const t = new HeadTailText(this.deps.maxOutputChars);
    t.append(text);
    return t.toString();
  }
}

function ok(output: string): ToolOutcome {
  return { output, exitCode: 0, reason: 'exited' };
}

/** A workspace path as a model or an MCP client writes it: relative, or absolute under /workspace. */
export function segments(path: string, field: string): string[] {
  // Only a leading "." segment goes ("./x", "."): a dotfile keeps its dot, and ".." is left for the parser to refuse.
  const relative = path.replace(/^\/workspace(\/|$)/, '').replace(/^\.(\/|$)/, '');
  const r = parseWorkspacePath(relative, field);
  if (!r.ok) throw new ApiError(r.code, r.message);
  return r.value;
}
