/**
 * How each language runs in process mode: the interpreter (by absolute path), the file the
 * code is written to inside the sandbox, and the variables that make it stream unbuffered.
 */
import { access, constants } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import type { Language } from '@sluice/protocol';

/** Where the code of an execution appears inside the sandbox (a read-only tmpfs file). */
export const CODE_DIR = '/run/sluice';

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
}

const RUNTIMES: Partial<Record<Language, Runtime>> = {
  python: {
    language: 'python',
    executable: '/usr/bin/python3',
    fileName: 'main.py',
    // -u: unbuffered binary stdio, so print() streams without flush=True.
    args: (p) => ['-u', p],
    env: { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: '/workspace' },
    versionArgs: ['--version'],
  },
  javascript: {
    language: 'javascript',
    executable: '/usr/bin/node',
    fileName: 'main.js',
    // Node writes to pipes synchronously on Linux; detect-module lets `import` and top-level await work in a .js file.
    args: (p, mem) => [
      ...(mem === undefined ? [] : [`--max-old-space-size=${Math.max(16, Math.floor(mem / 2 / 1024 / 1024))}`]),
      '--experimental-detect-module',
      '--no-warnings=ExperimentalWarning',
      p,
    ],
    env: {},
    versionArgs: ['--version'],
  },
  bash: {
    language: 'bash',
    executable: '/usr/bin/bash',
    fileName: 'main.sh',
    args: (p) => [p],
    env: {},
    versionArgs: ['--version'],
  },
};

/** The runtime for a language, or undefined when this build cannot run it in process mode. */
export function runtimeFor(language: Language): Runtime | undefined {
  return RUNTIMES[language];
}

/** What `GET /api/languages` reports for one language. */
export interface RuntimeInfo {
  language: Language;
  installed: boolean;
  version: string | null;
  /** Why it cannot run here, when it cannot. */
  reason: string | null;
}

/** Probes a runtime on the host: is the interpreter there, and which version is it. */
export async function probeRuntime(language: Language): Promise<RuntimeInfo> {
  const rt = RUNTIMES[language];
  if (!rt) return { language, installed: false, version: null, reason: `${language} is not supported by this server yet` };
  try {
    await access(rt.executable, constants.X_OK);
  } catch {
    return { language, installed: false, version: null, reason: `${rt.executable} is not installed on this host` };
  }
  const version = await new Promise<string | null>((resolve) => {
    execFile(rt.executable, rt.versionArgs, { timeout: 5000, env: {} }, (err, stdout, stderr) => {
      if (err) return resolve(null);
      const line = `${stdout}${stderr}`.split('\n').find((l) => l.trim() !== '') ?? '';
      resolve(line.trim() || null);
    });
  });
  return { language, installed: true, version, reason: null };
}
