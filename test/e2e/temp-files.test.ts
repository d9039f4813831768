/**
 * A server leaves no temporary files behind: stopped while it warms its runtimes (the Java
 * helper and CDS archive are built in scratch directories), nothing of it remains in its TMPDIR
 * or data dir, and none of its compilers still runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './helpers/server.js';
import { waitFor } from './helpers/host.js';

/** Command lines of live processes that mention `marker`. */
async function processesMentioning(marker: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(marker)) found.push(`${pid}: ${cmd.replaceAll('\0', ' ')}`);
  }
  return found;
}

test('a server stopped while it warms its runtimes leaves no scratch directory and no compiler behind', async (t) => {
  // The warm-up's scratch directories are Java's; without a JDK there is nothing to look at.
  if (!existsSync('/usr/bin/javac')) return t.skip('no JDK');
  // The server's own TMPDIR, so that what it leaves there is its own (others share /tmp).
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-server-tmp-'));
  await chmod(tmp, 0o711);
  const server = await startServer({ SLUICE_WARM_RUNTIMES: 'true', TMPDIR: tmp });
  try {
    const scratch = async (): Promise<string[]> => [
      ...(await readdir(server.dataDir).catch(() => [])).filter((n) => n.includes('.warm-')).map((n) => join(server.dataDir, n)),
      ...(await readdir(tmp)).map((n) => join(tmp, n)),
    ];
    // Stop it while a scratch directory exists (the Java helper compiling, or the archive).
    await waitFor('the Java warm-up to start', 60_000, async () => ((await scratch()).length > 0 ? true : undefined));
    const exited = new Promise((r) => server.proc.once('exit', r));
    server.proc.kill('SIGTERM');
    await exited;
    assert.equal(server.proc.exitCode, 0, server.logs());
    assert.deepEqual(await scratch(), [], 'no scratch directory in TMPDIR or the data dir');
    assert.deepEqual(await processesMentioning(server.dataDir), [], 'no compiler of the warm-up still runs');
    assert.deepEqual(await processesMentioning(tmp), [], 'no compiler of the warm-up still runs');
  } finally {
    await server.stop();
    await rm(tmp, { recursive: true, force: true });
  }
});
