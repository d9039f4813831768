/**
 * `sluice run [FILE | -] [-c CODE]`: runs code on a Sluice server and streams its output live,
 * stdout to stdout and stderr to stderr, exiting with the program's exit status. Without
 * `--session` it runs in a fresh session that is deleted afterwards.
 */
import type { Command } from 'commander';
import { clientAction } from '../internal/client-action.js';
import { connect, serverURL } from '../internal/connect.js';
import { execute } from '../internal/execute.js';
import { readCode } from '../internal/read-code.js';
import { languageOf, withRunOptions, type RunFlags } from '../internal/run-flags.js';
import { planStdin } from '../internal/stdin-plan.js';

interface RunCommandFlags extends RunFlags {
  code?: string;
  session?: string;
}

export function runCommand(program: Command): void {
  const cmd = program
    .command('run')
    .description('run a file or a snippet in a sandbox and stream its output (exit status: the program\'s)')
    .argument('[file]', 'file to run, or - to read the code from stdin (its extension or #! line picks the language)')
    .option('-c, --code <code>', 'code to run instead of a file')
    .option('-s, --session <id>', 'run in this session (created if needed, kept afterwards); default: a fresh one, deleted afterwards');
  withRunOptions(cmd).action((file: string | undefined, flags: RunCommandFlags) =>
    clientAction(flags, async () => {
      const source = await readCode(file, flags.code);
      const language = languageOf(flags) ?? source.language;
      const stdin = await planStdin(flags.stdin, source.fromStdin);
      const transport = flags.transport ?? 'sse';
      return execute({
        sluice: await connect(flags, transport),
        serverURL: serverURL(flags),
        target: flags.session === undefined ? { kind: 'ephemeral', language } : { kind: 'named', id: flags.session },
        code: source.code,
        language,
        mode: flags.mode,
        timeout: flags.timeout,
        transport,
        stdin,
        json: flags.json === true,
        progressBar: flags.progress,
      });
    }),
  );
}
