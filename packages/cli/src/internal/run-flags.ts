/** The options `sluice run` and `sluice exec` share, and how they become an execution's settings. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Mode } from '@sluice/protocol';
import type { Transport } from '@sluice/sdk';
import { withServerOption, type ConnectFlags } from './connect.js';

export interface RunFlags extends ConnectFlags {
  lang?: string;
  /** The older spelling of --lang. */
  language?: string;
  mode?: Mode;
  timeout?: number;
  transport?: Transport;
  /** TEXT from --stdin, false from --no-stdin. */
  stdin?: string | false;
  json?: boolean;
  /** False with --no-progress. */
  progress: boolean;
}

/** Adds the shared options (and --url) to `cmd`. */
export function withRunOptions(cmd: Command): Command {
  return withServerOption(cmd)
    .option('-l, --lang <language>', 'python, javascript, typescript, bash, r, java… (default: from the file, else the session\'s, else python)')
    .addOption(new Option('--language <language>').hideHelp())
    .addOption(new Option('--mode <mode>', 'kernel: a cell of the session\'s long-lived interpreter; process: a fresh process (default: the server\'s for the language)').choices(['kernel', 'process']))
    .option('-t, --timeout <seconds>', 'stop the program after this many seconds (exit 124)', parseSeconds)
    .option('--stdin <text>', 'give the program this text as stdin (default: forward our own stdin)')
    .option('--no-stdin', 'give the program an empty stdin')
    .addOption(new Option('--transport <transport>', 'how events travel').choices(['sse', 'websocket']).default('sse'))
    .option('--json', 'print the events as NDJSON on stdout (one per line, as the API sends them)')
    .option('--no-progress', 'do not draw progress events as a bar on the terminal');
}

/** --lang, or its older spelling. */
export function languageOf(flags: RunFlags): string | undefined {
  return flags.lang ?? flags.language;
}

/** Commander's parser for a seconds option: a number > 0, or an error naming what arrived. */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number of seconds > 0 (e.g. 30 or 0.5), got ${JSON.stringify(value)}`);
  return n;
}
