/**
 * `sluice exec SESSION CODE…`: runs code in an existing session, so a kernel's variables and the
 * workspace's files carry over from one call to the next (`sluice run --session` creates the
 * session instead; a typo here must not silently start from scratch).
 */
import type { Command } from 'commander';
import { text } from 'node:stream/consumers';
import { usageError } from '../internal/cli-error.js';
import { clientAction } from '../internal/client-action.js';
import { connect, serverURL } from '../internal/connect.js';
import { execute } from '../internal/execute.js';
import { languageOf, withRunOptions, type RunFlags } from '../internal/run-flags.js';
import { planStdin } from '../internal/stdin-plan.js';

export function execCommand(program: Command): void {
  const cmd = program
    .command('exec')
    .description('run code in an existing session (kernel state and files persist between calls)')
    .argument('<session>', 'the session\'s id (see `sluice sessions ls`)')
    .argument('[code...]', 'the code, its words joined by spaces (use -- before code that starts with -); - reads it from stdin');
  withRunOptions(cmd).action((session: string, words: string[], flags: RunFlags) =>
    clientAction(flags, async () => {
      // Reading stdin only on an explicit `-`: a script whose stdin is /dev/null must not run empty code by accident.
      if (words.length === 0) throw usageError('give the code to run (sluice exec SESSION CODE…), or - to read it from stdin');
      const fromStdin = words.length === 1 && words[0] === '-';
      const code = fromStdin ? await text(process.stdin) : words.join(' ');
      const transport = flags.transport ?? 'sse';
      return execute({
        sluice: await connect(flags, transport),
        serverURL: serverURL(flags),
        target: { kind: 'existing', id: session },
        code,
        language: languageOf(flags),
        mode: flags.mode,
        timeout: flags.timeout,
        transport,
        stdin: await planStdin(flags.stdin, fromStdin),
        json: flags.json === true,
        progressBar: flags.progress,
      });
    }),
  );
}
