/**
 * `sluice files put | get | ls | rm`: a session's workspace from outside, named `SESSION:PATH`
 * as scp does. Bytes go through untouched (binary files round-trip exactly) and stream: an
 * upload is read from disk as it is sent, a download written as it arrives, into a temporary
 * file renamed into place at the end, so a failed download never leaves half a file.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, openAsBlob, rmSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { Sluice } from '@sluice/sdk';
import { CLIError, usageError } from '../internal/cli-error.js';
import { clientAction } from '../internal/client-action.js';
import { connect, withServerOption, type ConnectFlags } from '../internal/connect.js';
import { ExitCode } from '../internal/exit-codes.js';
import { reportError } from '../internal/report-error.js';
import { parseSessionPath } from '../internal/session-path.js';
import { formatBytes, formatTable } from '../internal/table.js';
import { write } from '../internal/terminal.js';

interface ListFlags extends ConnectFlags {
  json?: boolean;
}

export function filesCommand(program: Command): void {
  const files = program.command('files').description('upload, download, list and delete files in a session\'s workspace');

  withServerOption(files.command('put').description('upload a local file (- for stdin) into a session\'s workspace'))
    .argument('<local>', 'the local file, or - to read stdin')
    .argument('<remote>', 'SESSION:PATH (a PATH ending in / or empty keeps the local name)')
    .action((local: string, remote: string, flags: ConnectFlags) => clientAction(flags, async () => put(await connect(flags), local, remote)));

  withServerOption(files.command('get').description('download a file from a session\'s workspace (- for stdout)'))
    .argument('<remote>', 'SESSION:PATH')
    .argument('<local>', 'where to write it: a file, a directory (keeps the remote name), or - for stdout')
    .action((remote: string, local: string, flags: ConnectFlags) => clientAction(flags, async () => get(await connect(flags), remote, local)));

  withServerOption(files.command('ls').alias('list').description('list a directory of a session\'s workspace'))
    .argument('<remote>', 'SESSION, or SESSION:DIR')
    .option('--json', 'print each entry as one JSON object per line')
    .action((remote: string, flags: ListFlags) => clientAction(flags, async () => list(await connect(flags), remote, flags.json === true)));

  withServerOption(files.command('rm').alias('delete').description('delete files (a directory with everything in it) from a session\'s workspace'))
    .argument('<remote...>', 'SESSION:PATH')
    .action((remotes: string[], flags: ConnectFlags) =>
      clientAction(flags, async () => {
        const sluice = await connect(flags);
        const targets = remotes.map((r) => parseSessionPath(r, 'REMOTE'));
        let status: number = ExitCode.OK;
        for (const t of targets) {
          if (t.path === '') throw usageError(`REMOTE: name a file or directory after "${t.session}:"; to delete the whole session use \`sluice sessions rm ${t.session}\``);
          try {
            await sluice.session(t.session).files.delete(t.path);
          } catch (err: unknown) {
            const code = reportError(err);
            if (status === ExitCode.OK) status = code;
          }
        }
        return status;
      }),
    );
}

async function put(sluice: Sluice, local: string, remote: string): Promise<number> {
  const dest = parseSessionPath(remote, 'REMOTE');
  let path = dest.path;
  if (path === '' || path.endsWith('/')) {
    if (local === '-') throw usageError(`REMOTE: name the file to write (${dest.session}:PATH); stdin has no name to keep`);
    path += basename(local);
  }
  let data: Uint8Array | Blob;
  if (local === '-') {
    data = new Uint8Array(await buffer(process.stdin));
  } else {
    const info = await stat(local).catch((err: unknown) => {
      throw new CLIError(`cannot read ${local}: ${err instanceof Error ? err.message : String(err)}`, ExitCode.NO_INPUT);
    });
    if (!info.isFile()) throw new CLIError(`cannot upload ${local}: not a regular file`, ExitCode.NO_INPUT);
    // Read from disk while it is sent, so a large file does not sit in memory.
    data = await openAsBlob(local);
  }
  await sluice.session(dest.session).files.write(path, data);
  return ExitCode.OK;
}

async function get(sluice: Sluice, remote: string, local: string): Promise<number> {
  const src = parseSessionPath(remote, 'REMOTE');
  if (src.path === '' || src.path.endsWith('/')) throw usageError(`REMOTE: name a file after "${src.session}:" (see \`sluice files ls ${src.session}\`)`);
  const body = Readable.fromWeb(await sluice.session(src.session).files.readStream(src.path));
  if (local === '-') return toStdout(body);

  const isDir = await stat(local).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const target = isDir ? join(local, basename(src.path)) : local;
  const partial = join(dirname(target), `.${basename(target)}.sluice-${randomBytes(4).toString('hex')}.part`);
  const file = createWriteStream(partial, { flags: 'wx' });
  let localFailure: unknown;
  file.once('error', (err) => (localFailure = err));
  // Ctrl-C mid-download: no half file left behind.
  const onSignal = (): void => {
    rmSync(partial, { force: true });
    process.exit(ExitCode.CANCELLED);
  };
  process.once('SIGINT', onSignal);
  try {
    await pipeline(body, file);
    await rename(partial, target).catch((err: unknown) => {
      localFailure = err;
      throw err;
    });
  } catch (err: unknown) {
    await rm(partial, { force: true });
    if (localFailure !== undefined) {
      const why = localFailure instanceof Error ? localFailure.message : String(localFailure);
      throw new CLIError(`cannot write ${target}: ${why}`, ExitCode.CANT_CREATE);
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
  }
  return ExitCode.OK;
}

/** Copies the download to stdout; a reader that goes away (`| head`) ends it quietly. */
async function toStdout(body: Readable): Promise<number> {
  let closed = false;
  const onError = (): void => {
    closed = true;
  };
  process.stdout.on('error', onError);
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      await write(process.stdout, chunk);
      if (closed) break; // leaving the loop destroys the body: the download stops
    }
  } finally {
    process.stdout.off('error', onError);
  }
  return closed ? ExitCode.BROKEN_PIPE : ExitCode.OK;
}

async function list(sluice: Sluice, remote: string, json: boolean): Promise<number> {
  const where = remote.includes(':') ? parseSessionPath(remote, 'REMOTE') : { session: remote, path: '' };
  const entries = await sluice.session(where.session).files.list(where.path === '' ? undefined : where.path);
  if (json) {
    process.stdout.write(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
  } else {
    const rows = entries.map((e) => [e.type, e.type === 'directory' ? '-' : formatBytes(e.size), e.modifiedAt, e.type === 'directory' ? `${e.path}/` : e.path]);
    process.stdout.write(formatTable(['TYPE', 'SIZE', 'MODIFIED', 'PATH'], rows));
  }
  return ExitCode.OK;
}
