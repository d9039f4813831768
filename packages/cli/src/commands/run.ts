/**
 * `sluice run FILE` / `sluice run -c CODE --language L`: runs code on a Sluice server and
 * streams its output live, stdout to stdout and stderr to stderr, exiting with the program's
 * exit code. A dropped connection resumes from the last event seen; Ctrl-C cancels the run.
 */
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { extname } from 'node:path';
import type { Command } from 'commander';
import {
  assertNever,
  decodeSSEStream,
  isErrorCode,
  parseExecutionEvent,
  type DoneEvent,
  type ExecutionEvent,
  type Language,
} from '@sluice/protocol';

interface RunOptions {
  code?: string;
  language?: string;
  session?: string;
  url: string;
  timeout?: string;
  json?: boolean;
}

const EXTENSIONS: Record<string, Language> = {
  '.py': 'python',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.ts': 'typescript',
  '.sh': 'bash',
  '.bash': 'bash',
  '.r': 'r',
  '.java': 'java',
};

/** The language a file's extension implies, if any. */
export function languageForFile(file: string): Language | undefined {
  return EXTENSIONS[extname(file).toLowerCase()];
}

export function runCommand(program: Command): void {
  program
    .command('run')
    .description('run a file or a snippet on a Sluice server and stream its output')
    .argument('[file]', 'file to run (its extension picks the language)')
    .option('-c, --code <code>', 'code to run instead of a file')
    .option('-l, --language <language>', 'python, javascript, bash, … (default: from the file, else python)')
    .option('-s, --session <id>', 'run in this session (kept afterwards); default: a new one, deleted afterwards')
    .option('--timeout <seconds>', 'execution timeout in seconds')
    .option('--json', 'print the events as NDJSON instead of the output')
    .option('--url <url>', 'server URL', process.env['SLUICE_URL'] ?? 'http://127.0.0.1:8080')
    .action(async (file: string | undefined, opts: RunOptions) => {
      process.exitCode = await run(file, opts);
    });
}

async function run(file: string | undefined, opts: RunOptions): Promise<number> {
  if ((file === undefined) === (opts.code === undefined)) return usage('give either a FILE or -c CODE');
  const code = opts.code ?? (await readFile(file as string, 'utf8').catch((err: Error) => err));
  if (code instanceof Error) return usage(`cannot read ${file}: ${code.message}`);
  const language = opts.language ?? (file ? languageForFile(file) : undefined) ?? 'python';
  const body: Record<string, unknown> = { code, language };
  if (opts.timeout !== undefined) {
    const t = Number(opts.timeout);
    if (!(t > 0)) return usage(`--timeout: expected a number of seconds > 0, got ${JSON.stringify(opts.timeout)}`);
    body['timeout'] = t;
  }
  const base = opts.url.replace(/\/+$/, '');
  const sessionID = opts.session ?? `cli-${randomUUID()}`;
  const ephemeral = opts.session === undefined;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  const apiKey = process.env['SLUICE_API_KEY'];
  if (apiKey) headers['authorization'] = `Bearer ${apiKey}`;

  let executionID: string | null = null;
  let lastSeq = 0;
  let done: DoneEvent | null = null;
  let interrupted = 0;
  const ac = new AbortController();
  const onSigint = (): void => {
    interrupted++;
    if (interrupted > 1 || executionID === null) {
      ac.abort();
      return;
    }
    process.stderr.write('\nsluice: cancelling… (Ctrl-C again to quit)\n');
    void fetch(`${base}/api/executions/${executionID}/cancel`, { method: 'POST', headers }).catch(() => {});
  };
  process.on('SIGINT', onSigint);
  // `sluice run … | head`: once the reader is gone, stop the remote program too.
  let outputClosed = false;
  const onOutputError = (err: NodeJS.ErrnoException): void => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    outputClosed = true;
    if (executionID !== null) void fetch(`${base}/api/executions/${executionID}/cancel`, { method: 'POST', headers }).catch(() => {});
    ac.abort();
  };
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);

  try {
    let res: Response;
    try {
      res = await fetch(`${base}/api/sessions/${encodeURIComponent(sessionID)}/stream`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: ac.signal,
      });
    } catch (err) {
      if (ac.signal.aborted) return outputClosed ? 141 : 130;
      return fatal(`cannot reach Sluice at ${base} (${(err as Error).message}); start one with: sluice serve`);
    }
    for (let attempt = 0; ; attempt++) {
      if (!res.ok || !res.body) return fatal(await describeError(res));
      executionID ??= res.headers.get('sluice-execution-id');
      try {
        for await (const msg of decodeSSEStream(res.body, ac.signal)) {
          if (msg.data === '') continue;
          const parsed = parseExecutionEvent(JSON.parse(msg.data));
          if (!parsed.ok) return fatal(`unexpected event from the server: ${parsed.message}`);
          const ev = parsed.value;
          if (ev.type !== 'gap') lastSeq = Math.max(lastSeq, ev.seq);
          const d = await handle(ev, opts.json === true);
          if (ev.type === 'start') executionID = ev.execution_id;
          if (d) done = d;
        }
      } catch (err) {
        // 141 = 128 + SIGPIPE, what a program whose output pipe closed exits with.
        if (ac.signal.aborted) return outputClosed ? 141 : 130;
        if (!(err instanceof TypeError) && !(err instanceof Error && /terminated|socket/i.test(err.message))) throw err;
      }
      if (done || executionID === null || attempt >= 20) break;
      // The stream ended without `done`: resume from the last event we saw.
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      res = await fetch(`${base}/api/executions/${executionID}/events`, {
        headers: { ...headers, 'last-event-id': String(lastSeq) },
        signal: ac.signal,
      }).catch(() => new Response(null, { status: 599 }));
      if (res.status === 599) continue;
    }
    if (!done) return fatal('the stream ended before the execution finished');
    if (!opts.json && done.reason !== 'exited') process.stderr.write(`sluice: ${describeDone(done)}\n`);
    return done.exit_code ?? 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.stdout.off('error', onOutputError);
    process.stderr.off('error', onOutputError);
    if (ephemeral) {
      await fetch(`${base}/api/sessions/${encodeURIComponent(sessionID)}`, { method: 'DELETE', headers }).catch(() => {});
    }
  }
}

/** Writes one event to the terminal; returns it when it is `done`. */
async function handle(ev: ExecutionEvent, json: boolean): Promise<DoneEvent | null> {
  if (json) {
    await write(process.stdout, `${JSON.stringify(ev)}\n`);
    return ev.type === 'done' ? ev : null;
  }
  switch (ev.type) {
    case 'stdout':
      await write(process.stdout, ev.content);
      return null;
    case 'stderr':
      await write(process.stderr, ev.content);
      return null;
    case 'truncated':
      process.stderr.write(`\nsluice: ${ev.dropped_bytes} bytes of ${ev.stream} were dropped (output limit)\n`);
      return null;
    case 'gap':
      process.stderr.write(`\nsluice: events ${ev.from_seq}–${ev.to_seq} are no longer available\n`);
      return null;
    case 'error':
      process.stderr.write(`sluice: ${ev.code}: ${ev.error}\n`);
      return null;
    case 'progress':
      if (ev.message !== undefined || ev.percent !== undefined) {
        process.stderr.write(`sluice: ${ev.percent !== undefined ? `${ev.percent}% ` : ''}${ev.message ?? ''}\n`);
      }
      return null;
    case 'start':
    case 'result':
      return null;
    case 'done':
      return ev;
    default:
      return assertNever(ev, 'event');
  }
}

function describeDone(d: DoneEvent): string {
  switch (d.reason) {
    case 'timeout':
      return `timed out after ${d.duration}`;
    case 'cancelled':
      return `cancelled after ${d.duration}`;
    case 'signaled':
      return `killed by ${d.signal ?? 'a signal'}`;
    case 'memory_limit':
      return 'killed: memory limit reached';
    case 'output_limit':
      return 'killed: output limit reached';
    case 'error':
      return 'the execution could not run';
    case 'exited':
      return `exited with ${d.exit_code ?? 'unknown status'}`;
    default:
      return assertNever(d.reason, 'reason');
  }
}

/** Writes honouring backpressure, so a slow terminal slows reading, not memory. */
function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  if (stream.destroyed || stream.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

async function describeError(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && isErrorCode(body.error.code)) return `${body.error.code}: ${String(body.error.message)}`;
  } catch {
    // not JSON: show the status
  }
  return `the server answered ${res.status} ${res.statusText}`;
}

function usage(message: string): number {
  process.stderr.write(`sluice run: ${message}\n`);
  return 2;
}

function fatal(message: string): number {
  process.stderr.write(`sluice: ${message}\n`);
  return 1;
}
