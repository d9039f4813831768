/**
 * The one owner of languages: how each runs in process mode (the interpreter by absolute path,
 * the file the code is written to inside the sandbox, the variables and flags that make it
 * stream unbuffered, what it needs mounted), which have a kernel and its command line, the
 * modes each offers; plus probing (is it installed here, which version) and the start-up
 * caches built once per server start (warmRuntimes).
 *
 * Helper files come from packages/sandbox/runtime, bound at RUNTIME_PATH (/opt/sluice); see
 * docs/languages.md for what each language gets.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { access, chmod, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Language, Mode } from '@sluice/protocol';

/** Where the code of an execution appears inside the sandbox (a read-only tmpfs file). */
export const CODE_DIR = '/run/sluice';

/** packages/sandbox/runtime on the host (the source of the copy the sandboxes bind). */
const RUNTIME_SOURCE = fileURLToPath(new URL('../runtime', import.meta.url));
/** RUNTIME_PATH of bwrap-options.ts, where that copy appears inside. */
const OPT = '/opt/sluice';

export interface Runtime {
  language: Language;
  /** Absolute path of the interpreter on the host's /usr, which the sandbox mounts read-only. */
  executable: string;
  /** File name the code is written to, under CODE_DIR. */
  fileName: string;
  /**
   * argv after the executable, given the code's path inside the sandbox and the memory the
   * sandbox may use: runtimes that size their heap from the host's RAM get a cap below it, so
   * a heap bomb fails with the runtime's own readable error instead of a bare OOM kill.
   */
  args(codePath: string, memoryBytes?: number): string[];
  /** Variables this runtime needs to stream output as it is written. */
  env: Record<string, string>;
  /** argv that prints the version on stdout or stderr. */
  versionArgs: string[];
  /**
   * Host paths this runtime needs inside the sandbox besides /usr and /opt/sluice, bound
   * read-only at `dest` (each `src` exists when the runtime is built).
   */
  binds?: readonly { src: string; dest: string }[];
  /**
   * Rewrites the code before it is written into the sandbox; the user's lines keep their
   * numbers (Java appends its `Sluice` helper class after the last line).
   */
  prepareCode?(code: string): string;
  /**
   * The stateful kernel of this language (runtime/kernels), when it has one: its command line,
   * given the memory its sandbox may use (undefined: no cgroup caps it).
   */
  kernel?: { command(memoryBytes: number | undefined): string[] };
}

/** `-Xmx`-style heap caps: half the sandbox's memory, in MiB, at least `floor`. */
function halfMiB(memoryBytes: number, floor: number): number {
  return Math.max(floor, Math.floor(memoryBytes / 2 / 1024 / 1024));
}

/** Node's heap cap below the memory limit. */
function nodeHeapArgs(memoryBytes: number | undefined): string[] {
  return memoryBytes === undefined ? [] : [`--max-old-space-size=${halfMiB(memoryBytes, 16)}`];
}

/** Existing host directories, each bound at the same path. */
function sameDirBinds(paths: readonly string[]): { src: string; dest: string }[] {
  return paths.filter((p) => existsSync(p)).map((p) => ({ src: p, dest: p }));
}

/** Debian keeps each JDK's conf (java.security, jvm.cfg…) in /etc/java-N-openjdk. */
function javaConfDirs(): string[] {
  try {
    return readdirSync('/etc')
      .filter((n) => /^java-\d+-openjdk$/.test(n))
      .map((n) => `/etc/${n}`);
  } catch {
    return [];
  }
}

/** Built by warmRuntimes under the runtime directory (see there); each flag is set once its file is ready. */
const JAVA_ARCHIVE = 'java/javac.jsa';
const JAVA_CLASSES = 'java/classes';
let javaArchiveReady = false;
let javaClassesReady = false;

/**
 * JVM flags measured fastest for one-shot programs (docs/languages.md): the serial collector,
 * the C1 compiler only, no hsperfdata file in /tmp; and the one the helper class needs.
 */
const JAVA_FLAGS = [
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-XX:-UsePerfData',
  // The Sluice helper wraps the inherited events fd (a socket: /dev/fd/3 cannot reopen it) in a FileDescriptor.
  '--add-opens=java.base/java.io=ALL-UNNAMED',
];

function javaArgs(codePath: string, memoryBytes: number | undefined): string[] {
  return [
    ...(memoryBytes === undefined ? [] : [`-Xmx${halfMiB(memoryBytes, 16)}m`]),
    ...JAVA_FLAGS,
    '-Xshare:auto',
    // Only once built and checked: a truncated archive crashes the JVM at start.
    ...(javaArchiveReady ? [`-XX:SharedArchiveFile=${OPT}/${JAVA_ARCHIVE}`] : []),
    // The compiled helper; a class Sluice in the program's own file still wins (source first).
    ...(javaClassesReady ? ['--class-path', `${OPT}/${JAVA_CLASSES}`] : []),
    codePath,
  ];
}

let javaHelper: string | null = null;

function javaHelperSource(): string | null {
  if (javaHelper === null) {
    try {
      javaHelper = readFileSync(join(RUNTIME_SOURCE, 'java', 'Sluice.java'), 'utf8');
    } catch {
      return null;
    }
  }
  return javaHelper;
}

/**
 * Appends the `Sluice` helper class (runtime/java/Sluice.java) to a single-file program:
 * the source launcher runs the first top-level class, which stays the user's, and every
 * user line keeps its number. A program that declares its own `Sluice` is left alone.
 */
export function appendJavaHelper(code: string): string {
  if (/\b(?:class|interface|enum|record)\s+Sluice\b/.test(code)) return code;
  const helper = javaHelperSource();
  if (helper === null) return code;
  return `${code}${code.endsWith('\n') ? '' : '\n'}\n${helper}`;
}

/**
 * Java's prepareCode: with the precompiled helper on the class path, the code goes as it is
 * (compiling the helper with every run costs ~200 ms); a program in a named package cannot
 * see a class of the unnamed package, so it gets the helper appended instead.
 */
function prepareJava(code: string): string {
  if (javaClassesReady && !/^\s*package\s+[\w$.]+\s*;/m.test(code)) return code;
  return appendJavaHelper(code);
}

const RUNTIMES: Record<Language, Runtime> = {
  python: {
    language: 'python',
    executable: '/usr/bin/python3',
    fileName: 'main.py',
    // -u: unbuffered binary stdio, so print() streams without flush=True.
    args: (p) => ['-u', p],
    // matplotlib: no display, and its font cache in /tmp rather than the user's workspace.
    env: { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: `/workspace:${OPT}/python`, MPLBACKEND: 'Agg', MPLCONFIGDIR: '/tmp/.matplotlib' },
    versionArgs: ['--version'],
    kernel: { command: () => ['/usr/bin/python3', '-u', `${OPT}/kernels/python_kernel.py`] },
  },
  javascript: {
    language: 'javascript',
    executable: '/usr/bin/node',
    fileName: 'main.js',
    // Node writes to pipes synchronously on Linux; detect-module lets `import` and top-level await work in a .js file.
    args: (p, mem) => [...nodeHeapArgs(mem), '--experimental-detect-module', '--no-warnings=ExperimentalWarning', p],
    env: {},
    versionArgs: ['--version'],
    kernel: { command: (mem) => ['/usr/bin/node', ...nodeHeapArgs(mem), `${OPT}/kernels/node_kernel.js`] },
  },
  typescript: {
    language: 'typescript',
    // run.sh transpiles with the bundled compiler (runtime/typescript/compile.cjs), then execs node.
    executable: '/usr/bin/sh',
    fileName: 'main.ts',
    args: (p, mem) => [`${OPT}/typescript/run.sh`, p, ...nodeHeapArgs(mem)],
    env: {},
    versionArgs: [],
  },
  bash: {
    language: 'bash',
    executable: '/usr/bin/bash',
    fileName: 'main.sh',
    args: (p) => [p],
    env: {},
    versionArgs: ['--version'],
  },
  r: {
    language: 'r',
    executable: '/usr/bin/Rscript',
    fileName: 'main.R',
    // R writes console output unbuffered to a pipe; the profile defines sluice_progress/result.
    args: (p) => [p],
    env: { R_PROFILE_USER: `${OPT}/r/sluice.R` },
    versionArgs: ['--version'],
    // Debian's R links its etc/ files (Renviron, ldpaths…) from /etc/R.
    binds: sameDirBinds(['/etc/R']),
  },
  java: {
    language: 'java',
    executable: '/usr/bin/java',
    // The single-file source launcher accepts any file name; the first top-level class runs.
    fileName: 'Main.java',
    args: javaArgs,
    env: {},
    versionArgs: ['--version'],
    binds: sameDirBinds(javaConfDirs()),
    prepareCode: prepareJava,
  },
};

/** The runtime for a language, or undefined when this build cannot run it in process mode. */
export function runtimeFor(language: Language): Runtime | undefined {
  return RUNTIMES[language];
}

/** The languages that have a stateful kernel (python, javascript). */
export type KernelLanguage = Extract<Language, 'python' | 'javascript'>;

/** True for a language with a kernel (its runtime says so). */
export function isKernelLanguage(language: Language): language is KernelLanguage {
  return RUNTIMES[language].kernel !== undefined;
}

/** The modes a language runs in: kernel and process where it has a kernel, process otherwise. */
export function modesFor(language: Language): readonly Mode[] {
  return isKernelLanguage(language) ? ['kernel', 'process'] : ['process'];
}

/** The mode a run gets when it names none: kernel where there is one (as in a notebook), process otherwise. */
export function defaultModeFor(language: Language): Mode {
  return isKernelLanguage(language) ? 'kernel' : 'process';
}

/** What `GET /api/languages` reports for one language. */
export interface RuntimeInfo {
  language: Language;
  installed: boolean;
  /** e.g. "Python 3.11.2", "v20.20.2", "TypeScript 5.9.3 on Node v20.20.2", "R 4.2.2", "openjdk 17.0.15". */
  version: string | null;
  /** Why it cannot run here, when it cannot. */
  reason: string | null;
}

/** What to install on Debian or Ubuntu when a runtime is missing. */
const INSTALL: Record<Language, string> = {
  python: 'apt-get install python3',
  javascript: 'apt-get install nodejs',
  typescript: 'apt-get install nodejs (the compiler ships with Sluice)',
  bash: 'apt-get install bash',
  r: 'apt-get install --no-install-recommends r-base-core',
  java: 'apt-get install default-jdk-headless',
};

/** Probes a runtime on the host: is the interpreter there, and which version is it. */
export async function probeRuntime(language: Language): Promise<RuntimeInfo> {
  const rt = RUNTIMES[language];
  const missing = (reason: string): RuntimeInfo => ({ language, installed: false, version: null, reason: `${reason}; install it with: ${INSTALL[language]}` });
  if (!(await isExecutable(rt.executable))) return missing(`${rt.executable} is not installed on this host`);
  switch (language) {
    case 'typescript': {
      if (!(await isExecutable('/usr/bin/node'))) return missing('/usr/bin/node is not installed on this host');
      const ts = typescriptPackage();
      if (ts === null) return { language, installed: false, version: null, reason: 'the typescript package is missing from the Sluice installation; run npm install' };
      const node = await versionLine('/usr/bin/node', ['--version']);
      return { language, installed: true, version: `TypeScript ${ts.version} on Node ${node ?? '(unknown version)'}`, reason: null };
    }
    case 'java': {
      // The source launcher compiles in memory with the JDK's compiler; a JRE has none.
      const javac = join(dirname(realpathOrSelf(rt.executable)), 'javac');
      if (!(await isExecutable(javac))) return missing(`${rt.executable} is a Java runtime without the compiler (no ${javac}), which single-file programs need`);
      const line = await versionLine(rt.executable, rt.versionArgs);
      // "openjdk 17.0.15 2025-04-15" → "openjdk 17.0.15"
      return { language, installed: true, version: line?.split(/\s+/).slice(0, 2).join(' ') ?? null, reason: null };
    }
    case 'r': {
      // "Rscript (R) version 4.2.2 Patched (2022-11-10 r83330)" → "R 4.2.2"
      const line = await versionLine(rt.executable, rt.versionArgs);
      const m = line === null ? null : /version\s+(\S+)/.exec(line);
      return { language, installed: true, version: m?.[1] ? `R ${m[1]}` : line, reason: null };
    }
    case 'bash': {
      // "GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)" → "GNU bash 5.2.15"
      const line = await versionLine(rt.executable, rt.versionArgs);
      const m = line === null ? null : /version\s+([\d.]+)/.exec(line);
      return { language, installed: true, version: m?.[1] ? `GNU bash ${m[1]}` : line, reason: null };
    }
    case 'python':
    case 'javascript':
      return { language, installed: true, version: await versionLine(rt.executable, rt.versionArgs), reason: null };
    default:
      return assertNever(language);
  }
}

/**
 * Builds the start-up caches into the server's copy of the runtime directory (the one bound at
 * /opt/sluice), once per server start, after it is installed; ~2.5 s of CPU, so better not
 * awaited before listening: runs started before a cache is ready just start slower.
 *
 * - typescript/typescript.js.v8cache: V8's code cache of the TypeScript compiler (a run starts
 *   ~300 ms sooner);
 * - java/classes/Sluice.class: the helper class, compiled once instead of with every run
 *   (~200 ms sooner);
 * - java/javac.jsa: a CDS archive of the JDK's compiler classes (~250 ms sooner).
 *
 * Each is written under a temporary name, checked, then renamed into place. Java's scratch
 * directories are siblings of the runtime directory (`runtime.warm-*`, in the data dir, not
 * bound into sandboxes, on the same filesystem so the rename works): a server killed while it
 * warms leaves them in its own data dir, where the next start removes them, never in /tmp.
 * `signal` (the server stopping) kills the compilers; the returned promise settles once every
 * scratch file is gone. Never throws.
 */
export async function warmRuntimes(runtimeDir: string, signal?: AbortSignal): Promise<void> {
  javaArchiveReady = false;
  javaClassesReady = false;
  await removeStaleScratch(runtimeDir);
  await Promise.all([
    warmTypeScript(runtimeDir, signal).catch(() => undefined),
    (async () => {
      if (!(await probeRuntime('java')).installed || signal?.aborted) return;
      await compileJavaHelper(runtimeDir, signal).catch(() => undefined);
      if (signal?.aborted) return;
      await archiveJava(runtimeDir, signal).catch(() => undefined);
    })(),
  ]);
}

/** The prefix of warmRuntimes' scratch directories beside `runtimeDir`. */
function scratchPrefix(runtimeDir: string): string {
  return `${runtimeDir}.warm-`;
}

/** Scratch directories a killed server left (one server per data dir: none of them is live). */
async function removeStaleScratch(runtimeDir: string): Promise<void> {
  const prefix = basename(scratchPrefix(runtimeDir));
  const names = await readdir(dirname(runtimeDir)).catch(() => []);
  await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => rm(join(dirname(runtimeDir), n), { recursive: true, force: true }).catch(() => undefined)));
}

async function warmTypeScript(runtimeDir: string, signal: AbortSignal | undefined): Promise<void> {
  const compiler = join(runtimeDir, 'typescript', 'compile.cjs');
  const cache = join(runtimeDir, 'typescript', 'typescript.js.v8cache');
  if (!(await isExecutable('/usr/bin/node')) || !existsSync(compiler)) return;
  const tmp = `${cache}.${process.pid}.tmp`;
  try {
    // The same node and V8 flags (none) as run.sh's compile step: V8 refuses a cache made under others.
    await runQuiet('/usr/bin/node', [compiler, '--write-cache', tmp], 60_000, signal);
    await rename(tmp, cache);
    await runQuiet('/usr/bin/node', [compiler, '--check-cache'], 30_000, signal);
  } catch {
    await rm(tmp, { force: true });
    await rm(cache, { force: true });
  }
}

/** Compiles the helper as a public class (another class loader than the program's must reach it). */
async function compileJavaHelper(runtimeDir: string, signal: AbortSignal | undefined): Promise<void> {
  const helper = javaHelperSource();
  if (helper === null) return;
  const javac = join(dirname(realpathOrSelf(RUNTIMES.java.executable)), 'javac');
  const work = await mkdtemp(scratchPrefix(runtimeDir));
  try {
    await writeFile(join(work, 'Sluice.java'), helper.replace(/^final class Sluice\b/m, 'public final class Sluice'));
    await runQuiet(javac, ['-d', join(work, 'classes'), join(work, 'Sluice.java')], 60_000, signal);
    await chmod(join(work, 'classes'), 0o755);
    await chmod(join(work, 'classes', 'Sluice.class'), 0o644);
    const dest = join(runtimeDir, JAVA_CLASSES);
    await rm(dest, { recursive: true, force: true });
    await rename(join(work, 'classes'), dest);
    javaClassesReady = true;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The dynamic CDS archive, made without a class path so that any run's class path extends it. */
async function archiveJava(runtimeDir: string, signal: AbortSignal | undefined): Promise<void> {
  const java = RUNTIMES.java.executable;
  const archive = join(runtimeDir, JAVA_ARCHIVE);
  const tmp = `${archive}.${process.pid}.tmp.jsa`;
  const work = await mkdtemp(scratchPrefix(runtimeDir));
  const warm = join(work, 'Warm.java');
  // A program that touches what most programs touch: the compiler, collections, the helper.
  const program = appendJavaHelper(
    'import java.util.*;\npublic class Warm {\n  public static void main(String[] args) {\n    List<Integer> l = new ArrayList<>(List.of(3, 1, 2));\n    Collections.sort(l);\n    System.out.println(l.stream().mapToInt(Integer::intValue).sum() + " " + Sluice.toJSON(Map.of("l", l)));\n  }\n}\n',
  );
  try {
    await writeFile(warm, program, { mode: 0o600 });
    await runQuiet(java, [`-XX:ArchiveClassesAtExit=${tmp}`, ...JAVA_FLAGS, warm], 60_000, signal);
    // Checked with the archive required: a bad one fails here instead of in a user's run.
    await runQuiet(java, [...JAVA_FLAGS, '-Xshare:on', `-XX:SharedArchiveFile=${tmp}`, warm], 60_000, signal);
    await rename(tmp, archive);
    javaArchiveReady = true;
  } catch {
    await rm(tmp, { force: true });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The typescript package that Sluice ships (and copies into /opt/sluice/node), or null. */
function typescriptPackage(): { dir: string; version: string } | null {
  try {
    const pkg = createRequire(import.meta.url).resolve('typescript/package.json');
    const { version } = JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown };
    accessSync(join(RUNTIME_SOURCE, 'typescript', 'run.sh'), constants.R_OK);
    return typeof version === 'string' ? { dir: dirname(pkg), version } : null;
  } catch {
    return null;
  }
}

function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first non-empty line a command prints (stdout, then stderr), or null. */
function versionLine(executable: string, args: readonly string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(executable, args, { timeout: 10_000, env: {} }, (err, stdout, stderr) => {
      if (err) return resolve(null);
      const line = `${stdout}${stderr}`.split('\n').find((l) => l.trim() !== '') ?? '';
      resolve(line.trim() || null);
    });
  });
}

/**
 * Runs a build step; `signal` ends it with SIGTERM (as the timeout does), on which a JVM still
 * removes its /tmp/hsperfdata_* entry, which SIGKILL would leave behind.
 */
function runQuiet(executable: string, args: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(executable, args, { timeout: timeoutMs, env: {}, cwd: '/', ...(signal ? { signal } : {}) }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${executable} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

function assertNever(x: never): never {
  throw new Error(`unexpected language ${String(x)}`);
}
