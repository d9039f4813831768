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
 * True once the sandbox's program exists: PID 1 (bwrap's init) has a child (the status
 * reporter) which has a child (the program). Throws if /proc cannot tell.
 */
export async function programStarted(initPID: number): Promise<boolean> {
  for (const reporter of await childrenOf(initPID)) {
    if ((await childrenOf(reporter).catch(() => [])).length > 0) return true;
  }
  return false;
}

/** Host pid of the sandbox's program (PID 1 → status reporter → program), or null if not running. */
export async function programPID(initPID: number): Promise<number | null> {
  for (const reporter of await childrenOf(initPID)) {
    const kids = await childrenOf(reporter).catch(() => []);
    if (kids[0] !== undefined) return kids[0];
  }
  return null;
}
