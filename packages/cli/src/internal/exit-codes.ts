/**
 * The client commands' exit statuses (docs/cli.md "Exit status"). A program that ran passes its
 * own status through; how the CLI's run ended otherwise follows shell conventions (124 like
 * coreutils `timeout`, 128 + n for signal n), and failures to talk to the server use the BSD
 * sysexits codes, so a script can tell "the program failed" from "the server said no".
 */
import { assertNever, isErrorCode, type DoneEvent } from '@sluice/protocol';
import type { SluiceErrorCode } from '@sluice/sdk';

export const ExitCode = {
  OK: 0,
  /** Bad flags or arguments (what commander reports too). */
  USAGE: 2,
  /** The server refused what was sent: INVALID_REQUEST, UNSUPPORTED_LANGUAGE, PAYLOAD_TOO_LARGE (EX_DATAERR). */
  DATA: 65,
  /** A local input file, or the session, file or execution named, does not exist (EX_NOINPUT). */
  NO_INPUT: 66,
  /** The server cannot be reached or cannot run code (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** A server error, a malformed answer, or a bug here (EX_SOFTWARE). */
  SOFTWARE: 70,
  /** A local output file cannot be written (EX_CANTCREAT). */
  CANT_CREATE: 73,
  /** Writing our own output failed other than by a closed pipe (EX_IOERR). */
  IO: 74,
  /** Busy or rate limited: try again later (EX_TEMPFAIL). */
  TEMPORARY: 75,
  /** The API key is missing or wrong, or the server forbids it (EX_NOPERM). */
  PERMISSION: 77,
  /** The execution ran out of its `timeout`, as coreutils `timeout` exits. */
  TIMEOUT: 124,
  /** Cancelled: by Ctrl-C here (128 + SIGINT), or by anyone else. */
  CANCELLED: 130,
  /** Killed at the memory limit, as the kernel's OOM killer leaves it (128 + SIGKILL). */
  MEMORY_LIMIT: 137,
  /** Our stdout was closed by its reader (`| head`), as a SIGPIPE'd program exits (128 + 13). */
  BROKEN_PIPE: 141,
  /** Killed for writing past the output kill limit, as RLIMIT_FSIZE does (128 + SIGXFSZ). */
  OUTPUT_LIMIT: 153,
} as const;

const FOR_ERROR: Record<SluiceErrorCode, number> = {
  INVALID_REQUEST: ExitCode.DATA,
  UNSUPPORTED_LANGUAGE: ExitCode.DATA,
  PAYLOAD_TOO_LARGE: ExitCode.DATA,
  NOT_FOUND: ExitCode.NO_INPUT,
  UNAUTHORIZED: ExitCode.PERMISSION,
  FORBIDDEN: ExitCode.PERMISSION,
  SESSION_BUSY: ExitCode.TEMPORARY,
  RATE_LIMITED: ExitCode.TEMPORARY,
  SANDBOX_UNAVAILABLE: ExitCode.UNAVAILABLE,
  CONNECTION_ERROR: ExitCode.UNAVAILABLE,
  TIMEOUT: ExitCode.UNAVAILABLE,
  LLM_UNAVAILABLE: ExitCode.UNAVAILABLE,
  LLM_ERROR: ExitCode.UNAVAILABLE,
  INTERNAL: ExitCode.SOFTWARE,
};

/** The exit status for an error code of the SDK (or of an `error` event); unknown codes are the server's bug. */
export function exitCodeForError(code: string): number {
  if (code === 'CONNECTION_ERROR' || code === 'TIMEOUT' || isErrorCode(code)) return FOR_ERROR[code];
  return ExitCode.SOFTWARE;
}

/**
 * The exit status of a finished execution: the program's own when it exited (or died of a signal,
 * which `exit_code` already spells 128 + n); otherwise one per `reason`. `errorCode` is the code of
 * the `error` event that preceded a `reason: "error"` done.
 */
export function exitCodeForDone(done: Pick<DoneEvent, 'reason' | 'exit_code' | 'signal'>, errorCode?: string): number {
  switch (done.reason) {
    case 'exited':
      return done.exit_code ?? ExitCode.SOFTWARE;
    case 'signaled':
      return done.exit_code ?? 128 + (signalNumber(done.signal) ?? 0);
    case 'timeout':
      return ExitCode.TIMEOUT;
    case 'cancelled':
      return ExitCode.CANCELLED;
    case 'memory_limit':
      return ExitCode.MEMORY_LIMIT;
    case 'output_limit':
      return ExitCode.OUTPUT_LIMIT;
    case 'error':
      return errorCode === undefined ? ExitCode.SOFTWARE : exitCodeForError(errorCode);
    case 'sandbox_lost':
      // As SANDBOX_UNAVAILABLE: the server could not finish running it.
      return ExitCode.UNAVAILABLE;
    default:
      return assertNever(done.reason, 'done.reason');
  }
}

/** Linux numbers of the signals that can end a sandboxed program; undefined for others. */
const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGXCPU: 24,
  SIGXFSZ: 25,
};

function signalNumber(name: string | undefined): number | undefined {
  return name === undefined ? undefined : SIGNALS[name];
}
