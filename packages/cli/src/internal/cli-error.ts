/** Failures the CLI detects itself (bad arguments, local files), each with its exit status. */
import { ExitCode } from './exit-codes.js';

/** A failure to report as `sluice: <message>` and exit with `exitCode`; `hint` says what to do. */
export class CLIError extends Error {
  override name = 'CLIError';
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** A usage error (exit 2): the message names the argument, what was expected and what arrived. */
export function usageError(message: string, hint?: string): CLIError {
  return new CLIError(message, ExitCode.USAGE, hint);
}
