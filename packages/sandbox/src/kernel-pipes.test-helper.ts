/**
 * Tests' way to start a kernel script straight on its pipes (no server, no sandbox): stdio
 * piped, the events socket on fd 3 and the control socket on fd 4, as the launcher sets them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNTIME = fileURLToPath(new URL('../runtime', import.meta.url));

/** Spawns the `language` kernel in `cwd` with fds 3 (events) and 4 (control) piped. */
export function spawnKernelOnPipes(language: 'python' | 'javascript', cwd: string): ChildProcess {
  const [cmd, args] =
    language === 'python'
      ? ['/usr/bin/python3', ['-u', join(RUNTIME, 'kernels', 'python_kernel.py')]]
      : [process.execPath, [join(RUNTIME, 'kernels', 'node_kernel.js')]];
  return spawn(cmd, args, {
    cwd,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      SLUICE_EVENTS_FD: '3',
      SLUICE_CONTROL_FD: '4',
      // Outside a PID namespace only the kernel's own descendants are a cell's leftovers.
      SLUICE_KERNEL_SCOPE: 'descendants',
      PYTHONPATH: join(RUNTIME, 'python'),
      PYTHONDONTWRITEBYTECODE: '1',
      NODE_PATH: join(RUNTIME, 'node'),
    },
  });
}

/** Kills a kernel spawnKernelOnPipes started (unless it is gone already) and removes its directory. */
export async function stopKernelOnPipes(child: ChildProcess, dir: string): Promise<void> {
  // A kernel that already exited emits no second 'exit': only wait for one still running.
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
  await rm(dir, { recursive: true, force: true });
}
