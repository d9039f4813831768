/** The code a run sends: a file, `-` (our stdin), or `-c CODE`; exactly one of them. */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { Language } from '@sluice/protocol';
import { CLIError, usageError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';
import { languageForFile } from './language-for-file.js';

export interface Code {
  code: string;
  /** The language the file's name or `#!` line implies. */
  language: Language | undefined;
  /** The code was read from our stdin, so stdin cannot also feed the program. */
  fromStdin: boolean;
}

/** Reads the code from `file` (`-` for stdin) or takes `inline`; a usage error unless exactly one is given. */
export async function readCode(file: string | undefined, inline: string | undefined): Promise<Code> {
  if (file !== undefined && inline !== undefined) throw usageError(`give either a FILE or -c CODE, not both (got FILE ${JSON.stringify(file)} and -c)`);
  if (inline !== undefined) return { code: inline, language: undefined, fromStdin: false };
  if (file === undefined) throw usageError('give a FILE to run, - to read the code from stdin, or -c CODE');
  if (file === '-') {
    const code = await text(process.stdin);
    return { code, language: languageForFile('-', code), fromStdin: true };
  }
  let code: string;
  try {
    code = await readFile(file, 'utf8');
  } catch (err: unknown) {
    throw new CLIError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, ExitCode.NO_INPUT);
  }
  return { code, language: languageForFile(file, code), fromStdin: false };
}
