/**
 * warmRuntimes' scratch files: beside the runtime directory (never in TMPDIR), gone when it
 * ends, when it is stopped half-way (the server stopping), and at the next start after a server
 * was killed while warming.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeRuntime, warmRuntimes } from './runtimes.js';

const RUNTIME = fileURLToPath(new URL('../runtime', import.meta.url));

/** Polls `cond` every 20 ms until it holds, or fails after `ms`. */
async function until(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every file below `dir`, relative to it. */
async function walk(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String);
}

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

test('warmRuntimes leaves no scratch files or compilers behind: when done, when stopped half-way, or after a killed server', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-warm-scratch-'));
  const privateTmp = join(dir, 'tmp');
  const saved = process.env['TMPDIR'];
  // os.tmpdir() reads TMPDIR on every call: anything warmRuntimes put in TMPDIR lands here.
  process.env['TMPDIR'] = privateTmp;
  try {
    await mkdir(privateTmp);
    const runtimeDir = join(dir, 'runtime');
    await cp(RUNTIME, runtimeDir, { recursive: true });
    const scratch = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n.startsWith('runtime.warm-'));
    const assertClean = async (when: string): Promise<void> => {
      assert.deepEqual(await scratch(), [], `${when}: no scratch directory beside the runtime`);
      assert.deepEqual(await readdir(privateTmp), [], `${when}: nothing in TMPDIR`);
      assert.deepEqual((await walk(runtimeDir)).filter((f) => f.includes('.tmp')), [], `${when}: no temporary file in the runtime`);
      assert.deepEqual(await processesMentioning(dir), [], `${when}: no compiler still running`);
    };
    const java = (await probeRuntime('java')).installed;

    // What a server killed while warming left behind.
    await mkdir(join(dir, 'runtime.warm-stale1'));
    await writeFile(join(dir, 'runtime.warm-stale1', 'Warm.java'), 'class Warm {}');

    // Stopped half-way: while the Java helper compiles (its scratch directory exists).
    const stop = new AbortController();
    const warming = warmRuntimes(runtimeDir, stop.signal);
    // (Looked for in TMPDIR too, where it used to be, so that the check below says what is wrong.)
    const started = async (): Promise<boolean> => (await scratch()).some((n) => n !== 'runtime.warm-stale1') || (await readdir(privateTmp)).length > 0;
    if (java) await until('the Java warm-up to start', started);
    stop.abort();
    await warming;
    await assertClean('stopped half-way');

    // Run to the end: the helper is compiled (renamed from its scratch directory into place).
    await warmRuntimes(runtimeDir);
    await assertClean('done');
    if (java) assert.ok(existsSync(join(runtimeDir, 'java', 'classes', 'Sluice.class')), 'the compiled helper is in place');
  } finally {
    if (saved === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = saved;
    await rm(dir, { recursive: true, force: true });
  }
});
