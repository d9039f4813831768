/** @sluice/sandbox: runs code in bubblewrap sandboxes. Knows nothing of HTTP. */
export * from './bwrap-options.js';
export * from './channel/events-channel.js';
export * from './cgroups/index.js';
export * from './kernel/kernel.js';
export * from './kernel/kernel-messages.js';
export * from './launch.js';
export * from './preflight.js';
export * from './prestart.js';
export * from './process-runner.js';
export * from './run-context.js';
export * from './runner.js';
export * from './runtimes.js';
export { buildSeccompFilter, type SeccompOptions } from './seccomp/build-filter.js';
export { ENOSYS_SYSCALLS, EPERM_SYSCALLS } from './seccomp/deny-list.js';
export { seccompArch, type SeccompArch, type SyscallName } from './seccomp/syscalls.js';
export * from './signal-namespace.js';
export * from './uid-pool.js';
export * from './workspace.js';
