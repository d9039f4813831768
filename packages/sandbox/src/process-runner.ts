/**
 * Process mode: the code runs as a fresh program in its own sandbox and cgroup, its output and
 * events channel streamed into the run's sink.
 */
import { EventsChannel } from './channel/events-channel.js';
import { cgroupHost } from './cgroups/cgroup-host.js';
import { watchCPUBudget } from './cgroups/cpu-budget.js';
import { ExecutionCgroup } from './cgroups/execution-cgroup.js';
import { launchSandbox, type SandboxProcess } from './launch.js';
import type { PrestartedProcess } from './prestart.js';
import { sandboxBase, type RunContext } from './run-context.js';
import type { RunnerOutcome, Runner, RunnerRequest, RunSink } from './runner.js';
import { CODE_DIR, type Runtime } from './runtimes.js';

/**
 * Starts the code of `request` as a sandboxed process of `runtime`: in `prestarted` when it is
 * given and fits the run (prestart.ts), otherwise in a sandbox started now.
 */
export async function startProcess(ctx: RunContext, runtime: Runtime, request: RunnerRequest, sink: RunSink, prestarted?: PrestartedProcess): Promise<Runner> {
  let proc: SandboxProcess | null = null;
  const channel = new EventsChannel({
    event: (e) => sink.event(e),
    malformed: (note) => sink.note(note),
    ack: (count) => proc?.ackEvents(count),
  });
  const code = runtime.prepareCode ? runtime.prepareCode(request.code) : request.code;
  const taken = prestarted?.fits(ctx, runtime)
    ? prestarted.take({ output: (stream, chunk) => sink.output(stream, chunk), events: (chunk) => channel.write(chunk) })
    : null;
  let cgroup: ExecutionCgroup | null;
  try {
    if (taken) {
      cgroup = taken.cgroup;
      proc = taken.proc;
      channel.attach(proc.events);
      // The same variables as a fresh launch: the session's were fixed at the pre-start, the run's come now.
      proc.begin({ code, env: request.env, stdin: request.stdin });
    } else {
      const codePath = `${CODE_DIR}/${runtime.fileName}`;
      cgroup = await createCgroup(ctx, request.id);
      const base = sandboxBase(ctx, runtime, cgroup);
      try {
        proc = launchSandbox({
          ...base,
          env: { ...base.env, ...request.env },
          codePath,
          command: [runtime.executable, ...runtime.args(codePath, cgroup ? ctx.memoryBytes : undefined)],
          code,
          ...(request.stdin !== undefined ? { stdin: request.stdin } : {}),
          onOutput: (stream, chunk) => sink.output(stream, chunk),
          onEvents: (chunk) => channel.write(chunk),
        });
      } catch (err) {
        await cgroup?.destroy().catch(() => undefined);
        throw err;
      }
      channel.attach(proc.events);
    }
  } catch (err) {
    // spawn() can throw synchronously (e.g. fd exhaustion); the run still ends with an outcome.
    if (taken) {
      taken.proc.kill();
      await taken.proc.exited;
      await taken.cgroup?.destroy().catch(() => undefined);
    }
    const outcome = failed(`the sandbox failed to start: ${(err as Error).message}`);
    return { done: Promise.resolve(outcome), stop: () => {}, writeStdin: () => {}, endStdin: () => {}, stdinBacklog: 0, watchCPU: () => null };
  }
  const started: SandboxProcess = proc;
  const done = started.exited.then(async (exit): Promise<RunnerOutcome> => {
    const stats = cgroup ? await cgroup.stats().catch(() => null) : null;
    await cgroup?.destroy().catch(() => undefined);
    // What the program wrote just before it ended, read in the same poll, is in first.
    await new Promise<void>((r) => setImmediate(r));
    channel.end();
    proc = null;
    const oomKills = stats?.oomKills ?? 0;
    // The kernel's OOM killer, not us, ended it: report the limit, not a bare SIGKILL.
    const oomKilled = oomKills > 0 && exit.signal === 'SIGKILL';
    return {
      exitCode: exit.exitCode,
      signal: exit.signal,
      setupError: exit.setupError === null ? null : `the sandbox failed to start: ${exit.setupError}`,
      oomKilled,
      oomKills: oomKilled ? 0 : oomKills,
      pidsMaxHits: stats?.pidsMaxHits ?? 0,
      kernelRestart: null,
    };
  });
  return {
    done,
    stop: (graceMs) => started.stop(graceMs),
    writeStdin: (data) => void started.writeStdin(data),
    endStdin: () => started.endStdin(),
    get stdinBacklog() {
      return started.stdinBacklog;
    },
    // RLIMIT_CPU counts per process; the cgroup's usage counts every process of the execution.
    watchCPU: (budgetNs, onExceeded) => (cgroup ? watchCPUBudget(cgroup, { budgetNs, onExceeded }) : null),
  };
}

/** A cgroup for the run, or null where the host has none (rlimits still apply). */
async function createCgroup(ctx: RunContext, id: string): Promise<ExecutionCgroup | null> {
  const host = await cgroupHost(ctx.cgroupParent);
  if (host.version === 'none') return null;
  const limits = {
    memoryBytes: ctx.memoryBytes,
    cpuQuota: ctx.cpu,
    ...(ctx.limits.processes !== undefined ? { pids: ctx.limits.processes } : {}),
  };
  return ExecutionCgroup.create(host, id, limits).catch(() => null);
}

/** The outcome of a run that never started. */
export function failed(setupError: string): RunnerOutcome {
  return { exitCode: null, signal: null, setupError, oomKilled: false, oomKills: 0, pidsMaxHits: 0, kernelRestart: null };
}
