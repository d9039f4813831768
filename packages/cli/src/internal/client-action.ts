/** The frame of every client command: run it, report what it threw, exit with its status. */
import { reportError } from './report-error.js';
import { serverURL, type ConnectFlags } from './connect.js';
import { exitWith } from './exit.js';

/** Runs `body` and exits with the status it resolves to, or the one its failure maps to. */
export async function clientAction(flags: ConnectFlags, body: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await body();
  } catch (err: unknown) {
    code = reportError(err, serverURL(flags));
  }
  return exitWith(code);
}
