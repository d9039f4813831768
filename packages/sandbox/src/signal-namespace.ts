/**
 * Signals every process of one PID namespace, found by scanning /proc for processes whose
 * `ns/pid` link names that namespace. Used for the graceful half of a stop: SIGTERM to every
 * process but the namespace's init, so programs can clean up before init is SIGKILLed.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Host pids of the processes in the PID namespace with inode `nsInode`. */
export async function pidsInNamespace(nsInode: number): Promise<number[]> {
  const want = `pid:[${nsInode}]`;
  const entries = await readdir('/proc');
  const found: number[] = [];
  await Promise.all(
    entries.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      try {
        if ((await readlink(`/proc/${name}/ns/pid`)) === want) found.push(Number(name));
      } catch {
        // The process exited while we looked, or it is not ours to inspect.
      }
    }),
  );
  return found;
}

/** Sends `signal` to every process of the namespace except `exceptPid`; returns how many were signalled. */
export async function signalNamespace(nsInode: number, signal: NodeJS.Signals, exceptPid: number): Promise<number> {
  let count = 0;
  for (const pid of await pidsInNamespace(nsInode)) {
    if (pid === exceptPid) continue;
    try {
      process.kill(pid, signal);
      count++;
    } catch {
      // Already gone (ESRCH): nothing to do.
    }
  }
  return count;
}

/** Host pids of a process's children (Linux's /proc/PID/task/PID/children). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/**
 * True once the sandbox's program runs: PID 1 (bwrap's init) has a child (the status reporter)
 * whose child has exec'd the program. Until that exec the child is the reporter's own fork, with
 * the reporter's command line, and the stop signals it inherited ignored: a SIGTERM then would be
 * lost and the program would run through the whole grace period, so it is not started yet (the
 * caller kills at once). Throws if /proc cannot tell.
 */
export async function programStarted(initPID: number): Promise<boolean> {
  for (const reporter of await childrenOf(initPID)) {
    const kids = await childrenOf(reporter).catch(() => []);
    if (kids.length === 0) continue;
    const own = await cmdline(reporter);
    for (const kid of kids) {
      const line = await cmdline(kid);
      // Gone meanwhile (null): it ran and ended, so it had started.
      if (line === null || line !== own) return true;
    }
  }
  return false;
}

/** A process's command line as /proc has it, or null once it is gone. */
async function cmdline(pid: number): Promise<string | null> {
  return readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => null);
}

/** Host pid of the sandbox's program (PID 1 → status reporter → program), or null if not running. */
export async function programPID(initPID: number): Promise<number | null> {
  for (const reporter of await childrenOf(initPID)) {
    const kids = await childrenOf(reporter).catch(() => []);
    if (kids[0] !== undefined) return kids[0];
  }
  return null;
}
