/**
 * `sluice sessions ls | create | rm`: the sessions of this API key. `ls` prints a table for
 * people, ids only with `-q` (for `xargs`), NDJSON with `--json`.
 */
import { Option, type Command } from 'commander';
import { NotFoundError } from '@sluice/sdk';
import { clientAction } from '../internal/client-action.js';
import { connect, withServerOption, type ConnectFlags } from '../internal/connect.js';
import { ExitCode } from '../internal/exit-codes.js';
import { reportError } from '../internal/report-error.js';
import { parseSeconds } from '../internal/run-flags.js';
import { formatTable } from '../internal/table.js';

interface ListFlags extends ConnectFlags {
  quiet?: boolean;
  json?: boolean;
}

interface CreateFlags extends ConnectFlags {
  lang?: string;
  timeout?: number;
  idleTtl?: number;
  network?: boolean;
}

interface RemoveFlags extends ConnectFlags {
  force?: boolean;
}

export function sessionsCommand(program: Command): void {
  const sessions = program.command('sessions').description('list, create and delete sessions');

  withServerOption(sessions.command('ls').alias('list').description('list the sessions (of this API key)'))
    .option('-q, --quiet', 'print only their ids, one per line')
    .option('--json', 'print each session as one JSON object per line')
    .action((flags: ListFlags) =>
      clientAction(flags, async () => {
        const list = await (await connect(flags)).sessions.list();
        if (flags.json === true) {
          process.stdout.write(list.map((s) => `${JSON.stringify(s.settings ?? { id: s.id })}\n`).join(''));
        } else if (flags.quiet === true) {
          process.stdout.write(list.map((s) => `${s.id}\n`).join(''));
        } else {
          const rows = list.map((s) => {
            const i = s.settings;
            return [s.id, i?.language ?? '', i?.state ?? '', String(i?.executions ?? ''), i?.createdAt ?? '', i?.expiresAt ?? ''];
          });
          process.stdout.write(formatTable(['ID', 'LANGUAGE', 'STATE', 'EXECUTIONS', 'CREATED', 'EXPIRES'], rows));
        }
        return ExitCode.OK;
      }),
    );

  withServerOption(sessions.command('create').description('create a session and print its id'))
    .argument('[id]', 'its id: letters, digits, - and _ (default: a random one)')
    .option('-l, --lang <language>', 'default language of its runs (default: python)')
    .option('-t, --timeout <seconds>', 'default timeout of its executions', parseSeconds)
    .option('--idle-ttl <seconds>', 'delete it after this long without activity (default: the server\'s, 900)', parseSeconds)
    .addOption(new Option('--network', 'ask for network access (refused unless the server allows it)'))
    .action((id: string | undefined, flags: CreateFlags) =>
      clientAction(flags, async () => {
        const session = await (await connect(flags)).sessions.create({
          id,
          language: flags.lang,
          timeout: flags.timeout,
          idleTTL: flags.idleTtl,
          network: flags.network,
        });
        process.stdout.write(`${session.id}\n`);
        return ExitCode.OK;
      }),
    );

  withServerOption(sessions.command('rm').alias('delete').description('delete sessions: every process killed, the workspace removed'))
    .argument('<ids...>', 'the sessions\' ids')
    .option('-f, --force', 'a session that does not exist is not an error')
    .action((ids: string[], flags: RemoveFlags) =>
      clientAction(flags, async () => {
        const sluice = await connect(flags);
        // Every id is tried; the status is the first failure's.
        let status: number = ExitCode.OK;
        for (const id of ids) {
          try {
            await sluice.sessions.delete(id);
          } catch (err: unknown) {
            if (flags.force === true && err instanceof NotFoundError) continue;
            const code = reportError(err);
            if (status === ExitCode.OK) status = code;
          }
        }
        return status;
      }),
    );
}

