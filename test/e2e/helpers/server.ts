/**
 * Starts a real Sluice server (the CLI's `serve`, as a child process, on a free loopback port,
 * with its own data dir) for end-to-end tests, and stops it afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from .test-dist/e2e/helpers). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = join(REPO_ROOT, 'packages/cli/dist/bin.js');

export interface TestServer {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  logs(): string;
  stop(): Promise<void>;
}

/** Starts a server; `env` adds SLUICE_* settings. Resolves once /healthz answers 200. */
export async function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-e2e-'));
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir], {
    // No compiler caches (CPU that the other tests' timing would pay for) unless a test asks.
    // A short drain at stop: a test that failed mid-run leaves executions running, and the
    // server must still end (unmounting its workspaces) before stop() gives up and SIGKILLs it.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_LOG_LEVEL: 'warn', SLUICE_WARM_RUNTIMES: 'false', SLUICE_DRAIN_GRACE: '3', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stdout?.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const url = await new Promise<string>((resolveURL, reject) => {
    // Generous: on a loaded machine the sandbox self-check alone can take a while.
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${stderr}`)), 60_000);
    proc.stderr?.setEncoding('utf8').on('data', (t: string) => {
      stderr += t;
      const m = /listening on (http:\/\/[^\s]+)/.exec(stderr);
      if (m?.[1]) {
        clearTimeout(timer);
        resolveURL(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${stderr}`));
    });
  });
  const health = await fetch(`${url}/healthz`);
  if (health.status !== 200) throw new Error(`healthz answered ${health.status}: ${await health.text()}\n${stderr}`);
  return {
    url,
    dataDir,
    proc,
    logs: () => stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
