/**
 * The bubblewrap options for one sandboxed process, following the verified recipe (docs/sandbox.md):
 * every namespace including a required user namespace, no nested user namespaces, read-only
 * system directories, a private /tmp, the workspace read-write, `/` remounted read-only last,
 * and the seccomp deny-list (seccomp/build-filter.ts) applied to everything inside. They
 * travel through `--args FD` so that `/proc/1/cmdline` inside shows no host paths.
 */
import { REPORTER_PATH } from './internal/reporter-script.js';

export interface BwrapSpec {
  /** Host directory bound read-write at /workspace. */
  workspace: string;
  /** Host files bound read-only over the sandbox's /etc/passwd and /etc/group. */
  passwdFile?: string;
  groupFile?: string;
  /**
   * Host copy of the helper files (packages/sandbox/runtime: the sluice modules, kernels,
   * sluice-progress…), bound read-only at RUNTIME_PATH; its node/ at /node_modules, so
   * `require('sluice')` and `import 'sluice'` resolve from any file.
   */
  runtimeDir?: string;
  /** More read-only binds a runtime needs. */
  extraBinds?: readonly { src: string; dest: string }[];
  /** Host file of the status reporter (see reporter-script.ts), bound at REPORTER_PATH. */
  reporterFile: string;
  /** Environment of the sandboxed command, built from scratch. */
  env: Record<string, string>;
  /** Share the host's network namespace (only when the session asked and the server allows). */
  network: boolean;
  /** Size of the private /tmp tmpfs, in bytes. */
  tmpBytes: number;
  /** fd the code file is read from, and where it appears inside. */
  codeFD: number;
  codePath: string;
  /** fd bwrap writes its JSON status lines to. */
  statusFD: number;
  /** fd bwrap reads the seccomp BPF program from (to EOF) and applies before running the command. */
  seccompFD: number;
}

/** Where the helper files appear inside the sandbox. */
export const RUNTIME_PATH = '/opt/sluice';

/** uid and gid the code runs as inside the sandbox (the host uid is the session's own). */
export const SANDBOX_UID = 1000;

/** Builds the option list (without the command, which stays on the real argv). */
export function buildBwrapOptions(spec: BwrapSpec): string[] {
  const o: string[] = [
    '--unshare-all',
    // --unshare-all only tries a user namespace; demand one (and --disable-userns needs it).
    '--unshare-user',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--uid', String(SANDBOX_UID),
    '--gid', String(SANDBOX_UID),
    '--hostname', 'sandbox',
    '--clearenv',
  ];
  for (const [name, value] of Object.entries(spec.env)) o.push('--setenv', name, value);
  if (spec.network) o.push('--share-net');
  o.push(
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/sbin', '/sbin',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--ro-bind-try', '/etc/alternatives', '/etc/alternatives',
    // Debian's JDK keeps its conf (java.security…) there; without it the JVM cannot start.
    '--ro-bind-try', '/etc/java-17-openjdk', '/etc/java-17-openjdk',
    '--ro-bind-try', '/etc/ld.so.cache', '/etc/ld.so.cache',
    '--ro-bind-try', '/etc/localtime', '/etc/localtime',
    '--ro-bind-try', '/etc/ssl', '/etc/ssl',
    '--ro-bind-try', '/etc/mime.types', '/etc/mime.types',
    // Debian's matplotlib reads its defaults there (without it, import fails); fontconfig's conf.
    '--ro-bind-try', '/etc/matplotlibrc', '/etc/matplotlibrc',
    '--ro-bind-try', '/etc/fonts', '/etc/fonts',
  );
  if (spec.network) {
    o.push(
      '--ro-bind-try', '/etc/resolv.conf', '/etc/resolv.conf',
      '--ro-bind-try', '/etc/hosts', '/etc/hosts',
      '--ro-bind-try', '/etc/nsswitch.conf', '/etc/nsswitch.conf',
    );
  }
  if (spec.passwdFile) o.push('--ro-bind', spec.passwdFile, '/etc/passwd');
  if (spec.groupFile) o.push('--ro-bind', spec.groupFile, '/etc/group');
  o.push(
    '--proc', '/proc',
    '--dev', '/dev',
    // --size applies to the next --tmpfs only.
    '--size', String(spec.tmpBytes), '--tmpfs', '/tmp',
    '--size', String(16 * 1024 * 1024), '--tmpfs', '/dev/shm',
    '--bind', spec.workspace, '/workspace',
    '--chdir', '/workspace',
    '--ro-bind', spec.reporterFile, REPORTER_PATH,
  );
  if (spec.runtimeDir !== undefined) o.push('--ro-bind', spec.runtimeDir, RUNTIME_PATH, '--ro-bind', `${spec.runtimeDir}/node`, '/node_modules');
  for (const b of spec.extraBinds ?? []) o.push('--ro-bind', b.src, b.dest);
  o.push(
    '--file', String(spec.codeFD), spec.codePath,
    // Last mount operation: without it the sandbox can write to / and /etc (bwrap's root tmpfs).
    '--remount-ro', '/',
    // Not a mount operation: bwrap reads the BPF from the fd at once and installs it in its
    // PID 1 and right before exec'ing the command, so it binds everything inside.
    '--seccomp', String(spec.seccompFD),
    '--json-status-fd', String(spec.statusFD),
  );
  return o;
}

/** Serialises options for `--args FD`: NUL-separated, NUL-terminated. */
export function serializeBwrapArgs(options: readonly string[]): string {
  for (const opt of options) {
    if (opt.includes('\0')) throw new TypeError(`bwrap option contains NUL: ${JSON.stringify(opt)}`);
  }
  return options.length === 0 ? '' : `${options.join('\0')}\0`;
}
