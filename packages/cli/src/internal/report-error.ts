/**
 * Prints a failure on stderr the one way every client command does (`sluice: CODE: message
 * (request id …)`, then a hint) and picks its exit status (exit-codes.ts).
 */
import { assertNever } from '@sluice/protocol';
import { SluiceError, type SluiceErrorCode } from '@sluice/sdk';
import { CLIError } from './cli-error.js';
import { ExitCode, exitCodeForError } from './exit-codes.js';

/** Writes `err` to stderr and returns the exit status it maps to. */
export function reportError(err: unknown, serverURL?: string): number {
  const { lines, exitCode } = describeError(err, serverURL);
  process.stderr.write(lines.map((l) => `sluice: ${l}\n`).join(''));
  return exitCode;
}

/** The lines (without the `sluice: ` prefix) and exit status for `err`. */
export function describeError(err: unknown, serverURL?: string): { lines: string[]; exitCode: number } {
  if (err instanceof CLIError) return { lines: withHint(err.message, err.hint), exitCode: err.exitCode };
  if (err instanceof SluiceError) {
    const id = err.requestID === undefined ? '' : ` (request id ${err.requestID})`;
    return { lines: withHint(`${err.code}: ${err.message}${id}`, hintFor(err.code, serverURL)), exitCode: exitCodeForError(err.code) };
  }
  // The SDK checks its options where they enter and throws these, naming the option.
  if (err instanceof TypeError || err instanceof RangeError) return { lines: [err.message], exitCode: ExitCode.USAGE };
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { lines: [`internal error: ${message}`], exitCode: ExitCode.SOFTWARE };
}

function withHint(message: string, hint: string | undefined): string[] {
  return hint === undefined ? [message] : [message, `hint: ${hint}`];
}

function hintFor(code: SluiceErrorCode, serverURL: string | undefined): string | undefined {
  switch (code) {
    case 'CONNECTION_ERROR':
      return `start a server with \`sluice serve\`, or point --url (or SLUICE_URL) at one; tried ${serverURL ?? 'the default URL'}`;
    case 'UNAUTHORIZED':
      return 'set SLUICE_API_KEY to one of the server\'s API keys (SLUICE_API_KEYS on the server)';
    case 'SESSION_BUSY':
    case 'RATE_LIMITED':
      return 'try again later';
    case 'TIMEOUT':
      return 'the server did not answer in time; is it overloaded?';
    case 'LLM_UNAVAILABLE':
      return 'the server needs a model endpoint: SLUICE_LLM_BASE_URL, SLUICE_LLM_MODEL (and SLUICE_LLM_API_KEY) on the server (docs/agents.md)';
    case 'LLM_ERROR':
      return undefined;
    case 'INVALID_REQUEST':
    case 'FORBIDDEN':
    case 'NOT_FOUND':
    case 'PAYLOAD_TOO_LARGE':
    case 'UNSUPPORTED_LANGUAGE':
    case 'INTERNAL':
    case 'SANDBOX_UNAVAILABLE':
      return undefined;
    default:
      return assertNever(code, 'error code');
  }
}

