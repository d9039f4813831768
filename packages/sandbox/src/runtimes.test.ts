/**
 * Runtimes: argv and heap caps, probing, Java's prepareCode, and the start-up caches of
 * warmRuntimes (built into a copy of the runtime directory, then used the way a sandbox would,
 * with /opt/sluice replaced by that copy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LANGUAGES } from '@sluice/protocol';
import { defaultModeFor, modesFor, probeRuntime, runtimeFor, warmRuntimes } from './runtimes.js';

const RUNTIME = fileURLToPath(new URL('../runtime', import.meta.url));
const MiB = 1024 * 1024;

function exec(cmd: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: '/usr/bin:/bin', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

test('every language of the contract has a runtime; kernel languages default to kernel mode', () => {
  for (const l of LANGUAGES) {
    const rt = runtimeFor(l);
    assert.ok(rt, l);
    assert.equal(rt.language, l);
    assert.ok(rt.executable.startsWith('/usr/'), `${l}: ${rt.executable} is under /usr, which the sandbox mounts`);
  }
  assert.deepEqual(modesFor('python'), ['kernel', 'process']);
  assert.deepEqual(modesFor('r'), ['process']);
  assert.equal(defaultModeFor('javascript'), 'kernel');
  assert.equal(defaultModeFor('java'), 'process');
  assert.equal(runtimeFor('python')?.env['PYTHONPATH'], '/workspace:/opt/sluice/python');
  assert.equal(runtimeFor('r')?.env['R_PROFILE_USER'], '/opt/sluice/r/sluice.R');
});

test('heap caps: half the memory limit for node, typescript and java; none without a limit', () => {
  assert.ok(runtimeFor('javascript')?.args('/run/sluice/main.js', 512 * MiB).includes('--max-old-space-size=256'));
  assert.ok(runtimeFor('typescript')?.args('/run/sluice/main.ts', 512 * MiB).includes('--max-old-space-size=256'));
  assert.deepEqual(runtimeFor('typescript')?.args('/run/sluice/main.ts'), ['/opt/sluice/typescript/run.sh', '/run/sluice/main.ts']);
  const java = runtimeFor('java')?.args('/run/sluice/Main.java', 512 * MiB) ?? [];
  assert.equal(java[0], '-Xmx256m');
  assert.equal(java[java.length - 1], '/run/sluice/Main.java');
  assert.ok(!(runtimeFor('java')?.args('/run/sluice/Main.java') ?? []).some((a) => a.startsWith('-Xmx')));
});

test('probes name what is missing and how to install it, and give short versions', async () => {
  for (const l of LANGUAGES) {
    const info = await probeRuntime(l);
    if (info.installed) {
      assert.equal(info.reason, null);
      assert.equal(typeof info.version, 'string', l);
    } else {
      assert.match(info.reason ?? '', /install/, l);
    }
  }
  const ts = await probeRuntime('typescript');
  if (ts.installed) assert.match(ts.version ?? '', /^TypeScript \d+\.\d+\.\d+ on Node v\d+/);
});

test('warmRuntimes builds the TypeScript code cache, the compiled Java helper and the CDS archive, and runs use them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-warm-'));
  try {
    const runtimeDir = join(dir, 'runtime');
    await cp(RUNTIME, runtimeDir, { recursive: true });
    const tsDir = dirname(createRequire(import.meta.url).resolve('typescript/package.json'));
    await mkdir(join(runtimeDir, 'node', 'typescript', 'lib'), { recursive: true });
    await cp(join(tsDir, 'package.json'), join(runtimeDir, 'node', 'typescript', 'package.json'));
    await cp(join(tsDir, 'lib', 'typescript.js'), join(runtimeDir, 'node', 'typescript', 'lib', 'typescript.js'));
    await warmRuntimes(runtimeDir);

    if (existsSync('/usr/bin/node')) {
      assert.ok(existsSync(join(runtimeDir, 'typescript', 'typescript.js.v8cache')), 'the V8 code cache is there');
      const check = await exec('/usr/bin/node', [join(runtimeDir, 'typescript', 'compile.cjs'), '--check-cache']);
      assert.equal(check.code, 0, 'V8 accepts it');
    }

    if (!(await probeRuntime('java')).installed) return t.skip('no JDK: the Java caches are not built');
    assert.ok(existsSync(join(runtimeDir, 'java', 'classes', 'Sluice.class')));
    assert.ok(existsSync(join(runtimeDir, 'java', 'javac.jsa')));
    const java = runtimeFor('java');
    assert.ok(java?.prepareCode);
    const plain = 'public class Main {\n  public static void main(String[] a) {\n    Sluice.progress(10, "x");\n    System.out.println("ok");\n  }\n}\n';
    assert.equal(java.prepareCode(plain), plain, 'the compiled helper is on the class path: the code goes as it is');
    const packaged = `package p;\n${plain}`;
    assert.notEqual(java.prepareCode(packaged), packaged, 'a named package cannot see it: the source is appended');
    const args = java.args('/run/sluice/Main.java', 256 * MiB);
    assert.ok(args.includes('-XX:SharedArchiveFile=/opt/sluice/java/javac.jsa'));
    assert.ok(args.includes('/opt/sluice/java/classes'));
    const work = join(dir, 'work');
    await mkdir(work);
    for (const [name, code] of [['Main.java', plain], ['Packaged.java', java.prepareCode(packaged)]] as const) {
      await writeFile(join(work, name), code);
      const hostArgs = java.args(join(work, name), 256 * MiB).map((a) => a.replaceAll('/opt/sluice', runtimeDir));
      // -Xshare:on (after -Xshare:auto): fail rather than silently run without the archive.
      const r = await exec(java.executable, [...hostArgs.slice(0, -1), '-Xshare:on', ...hostArgs.slice(-1)], { SLUICE_EVENTS_FD: '' });
      // Outside Sluice (no events channel) progress goes to stderr as text; nothing else may
      // be there (a CDS or class-path warning would be).
      assert.equal(r.stderr, '[progress] 10% x\n', name);
      assert.equal(r.stdout, 'ok\n', name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
