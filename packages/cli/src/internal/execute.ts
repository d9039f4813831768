/**
 * Runs code on the server and streams it to the terminal: the core of `sluice run` and
 * `sluice exec`. It owns the whole life of one execution on the client side:
 *
 * - the session: a fresh ephemeral one (deleted afterwards), an existing one (checked first),
 *   or a named one that the run creates if needed;
 * - the output, event by event as the SDK reads them, so a slow reader slows the reads;
 * - the program's stdin (stdin-plan.ts);
 * - Ctrl-C (and SIGTERM, SIGHUP): the first cancels the remote execution and waits for its
 *   `done`, a second exits at once;
 * - a closed stdout (`| head`): leaving the stream cancels the execution, then a quiet exit;
 * - the exit status (exit-codes.ts).
 */
import { randomBytes } from 'node:crypto';
import { assertNever, type DoneEvent, type Mode } from '@sluice/protocol';
import type { ExecutionStream, Session, Sluice, Transport } from '@sluice/sdk';
import { ExitCode, exitCodeForDone } from './exit-codes.js';
import { renderEvent } from './render-event.js';
import { reportError } from './report-error.js';
import { forwardStdin, type StdinPlan } from './stdin-plan.js';
import { Terminal } from './terminal.js';

/** Where the code runs. */
export type Target =
  /** A new session, deleted when the run is over. */
  | { kind: 'ephemeral'; language: string | undefined }
  /** A session that must exist already (NOT_FOUND otherwise). */
  | { kind: 'existing'; id: string }
  /** A session by id, created by the run if there is none, and kept. */
  | { kind: 'named'; id: string };

export interface ExecuteOptions {
  sluice: Sluice;
  /** For messages: the server the client talks to. */
  serverURL: string;
  target: Target;
  code: string;
  language: string | undefined;
  mode: Mode | undefined;
  /** Seconds. */
  timeout: number | undefined;
  transport: Transport | undefined;
  stdin: StdinPlan;
  /** Print the events as NDJSON instead of rendering them. */
  json: boolean;
  /** Draw `progress` events as a bar when stderr is a terminal. */
  progressBar: boolean;
}

/** Seconds an ephemeral session lives once idle: long enough for nothing, short enough that one left behind (a second Ctrl-C, a killed CLI) goes soon. */
const EPHEMERAL_IDLE_TTL = 60;
/** Bound on deleting the ephemeral session afterwards; past it the idle TTL cleans up. */
const CLEANUP_DEADLINE_MS = 5000;
/** The signals that stop a run, and their numbers for the 128 + n exit status. */
const STOP_SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

/** Runs the code and renders it; resolves with the exit status. Never throws. */
export async function execute(o: ExecuteOptions): Promise<number> {
  const term = new Terminal(process.stdout, process.stderr, { progressBar: o.progressBar && !o.json });
  // Aborted by the first signal while no execution exists yet (creating or checking the session).
  const beforeStart = new AbortController();
  // Aborted only when following the execution must stop without its `done` (the cancel could not be sent).
  const giveUp = new AbortController();
  let stream: ExecutionStream | undefined;
  let received: StopSignal | undefined;

  const onSignal = (signal: StopSignal): void => {
    if (received !== undefined) {
      // The second signal: the user wants out now, whatever is still pending.
      term.clearProgress();
      process.exit(128 + STOP_SIGNALS[signal]);
    }
    received = signal;
    if (stream === undefined) {
      beforeStart.abort();
      return;
    }
    void term.note(`cancelling the execution… (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to quit at once)`);
    stream.cancel().catch(() => giveUp.abort());
  };
  const handlers = Object.keys(STOP_SIGNALS).map((name) => {
    const signal = name as StopSignal;
    const handler = (): void => onSignal(signal);
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });

  let session: Session | undefined;
  const ephemeral = o.target.kind === 'ephemeral';
  try {
    session = await openSession(o.sluice, o.target, beforeStart.signal);
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    stream = session.stream(o.code, {
      language: o.language,
      mode: o.mode,
      timeout: o.timeout,
      transport: o.transport,
      stdin: o.stdin.kind === 'text' ? o.stdin.text : undefined,
      signal: giveUp.signal,
    });
    if (o.stdin.kind === 'forward') void forwardStdin(o.stdin.input, stream, giveUp.signal);

    let done: DoneEvent | undefined;
    let errorCode: string | undefined;
    for await (const ev of stream) {
      if (o.json) await term.stdout(`${JSON.stringify(ev)}\n`);
      else await renderEvent(ev, term);
      if (ev.type === 'error') errorCode = ev.code;
      if (ev.type === 'done') done = ev;
      // Nobody reads our output any more: leaving the loop cancels the execution (SDK).
      if (term.failure !== undefined) break;
    }
    if (term.failure !== undefined) return term.failure === 'broken_pipe' ? ExitCode.BROKEN_PIPE : ExitCode.IO;
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    if (done === undefined) return reportError(new Error('the stream ended without done'), o.serverURL);
    return exitCodeForDone(done, errorCode);
  } catch (err: unknown) {
    if (term.failure !== undefined) return term.failure === 'broken_pipe' ? ExitCode.BROKEN_PIPE : ExitCode.IO;
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    term.clearProgress();
    return reportError(err, o.serverURL);
  } finally {
    term.dispose();
    if (o.stdin.kind === 'forward') o.stdin.input.destroy();
    for (const off of handlers) off();
    if (ephemeral && session !== undefined) await deleteQuietly(session);
    o.sluice.close();
  }
}

async function openSession(sluice: Sluice, target: Target, signal: AbortSignal): Promise<Session> {
  switch (target.kind) {
    case 'ephemeral':
      return sluice.sessions.create({ id: `cli-${randomBytes(8).toString('hex')}`, language: target.language, idleTTL: EPHEMERAL_IDLE_TTL, signal });
    case 'existing':
      // A typo must not silently run in a fresh session without the state the user expects.
      return sluice.sessions.get(target.id, { signal });
    case 'named':
      return sluice.session(target.id);
    default:
      return assertNever(target, 'target');
  }
}

/** Deletes the ephemeral session within a deadline; if that fails, its idle TTL removes it. */
async function deleteQuietly(session: Session): Promise<void> {
  try {
    await session.delete({ signal: AbortSignal.timeout(CLEANUP_DEADLINE_MS) });
  } catch {
    // Best effort by design: see EPHEMERAL_IDLE_TTL.
  }
}

