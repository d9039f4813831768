/**
 * Session workspaces on the host, plus the synthetic /etc/passwd and /etc/group the sandboxes
 * see. As root, each workspace is its own tmpfs (a size and an inode cap, so a disk or inode
 * bomb ends in ENOSPC inside the sandbox and never touches the host's disk), owned by the
 * session's uid, with a second view for the server mounted `nosymfollow`: the server reads and
 * writes workspace files only through that view, so a symlink the sandbox planted
 * (`leak -> /etc/shadow`) fails with ELOOP instead of leaking a host file (docs/sandbox.md, "What the code sees").
 *
 *   <dataDir>/workspaces/<random>/      root, 0711 (never a mount point itself)
 *                                 ws    tmpfs, the session's uid, bound at /workspace
 *                                 view  bind of ws, nosymfollow,nosuid,nodev,noexec
 *
 * Without root there are no mounts: `ws` is a plain directory and `view` is the same path.
 * A pre-started shell's workspace is made under <dataDir>/pool/ and, once a session adopts it,
 * <dataDir>/workspaces/<random> is a symlink to it (it never moves: see adoptWorkspace).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, cp, lstat, mkdir, readdir, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { basename, dirname, join, resolve } from 'node:path';
import { SANDBOX_UID } from './bwrap-options.js';
import { MOUNT_SCRIPT } from './internal/mount-script.js';
import { PERL, REPORTER_SCRIPT } from './internal/reporter-script.js';
import { seccompArch } from './seccomp/syscalls.js';
import { randomHex } from './random-token.js';

/** Host paths a sandbox host needs. */
export interface SandboxHostPaths {
  dataDir: string;
  workspacesDir: string;
  /** Workspaces of pre-started session shells; linked from workspacesDir when a session adopts one. */
  poolDir: string;
  passwdFile: string;
  groupFile: string;
  /** The status reporter script, bound read-only into every sandbox. */
  reporterFile: string;
  /** The copy of packages/sandbox/runtime the sandboxes bind (see installRuntime). */
  runtimeDir: string;
}

/**
 * Prepares the data directory. Every parent must be searchable by the sandbox uid, because an
 * unprivileged bwrap resolves its `--bind` sources as that uid.
 */
export async function prepareDataDir(dataDir: string): Promise<SandboxHostPaths> {
  const root = resolve(dataDir);
  await mkdir(root, { recursive: true, mode: 0o711 });
  await chmod(root, 0o711);
  for (let dir = dirname(root); ; dir = dirname(dir)) {
    const st = await stat(dir);
    if ((st.mode & 0o001) === 0) {
      throw new Error(
        `${dir} is not searchable by other users (mode ${(st.mode & 0o777).toString(8)}); sandboxes could not reach ` +
          `their workspaces under ${root}. Choose a SLUICE_DATA_DIR whose parents are o+x, e.g. /var/lib/sluice or /tmp/sluice.`,
      );
    }
    if (dir === dirname(dir)) break;
  }
  const workspacesDir = join(root, 'workspaces');
  // Workspaces of a previous run belong to sessions that died with it: unmount, then remove.
  await unmountUnder(workspacesDir);
  await rm(workspacesDir, { recursive: true, force: true });
  await mkdir(workspacesDir, { mode: 0o711 });
  await chmod(workspacesDir, 0o711);
  const poolDir = join(root, 'pool');
  await unmountUnder(poolDir);
  await rm(poolDir, { recursive: true, force: true });
  await mkdir(poolDir, { mode: 0o711 });
  await chmod(poolDir, 0o711);
  const etc = join(root, 'etc');
  await mkdir(etc, { recursive: true, mode: 0o755 });
  await chmod(etc, 0o755);
  const passwdFile = join(etc, 'passwd');
  const groupFile = join(etc, 'group');
  await writeFile(passwdFile, `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${SANDBOX_UID}:${SANDBOX_UID}:sandbox:/workspace:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`, { mode: 0o644 });
  const reporterFile = join(etc, 'exec.pl');
  await writeFile(reporterFile, REPORTER_SCRIPT, { mode: 0o644 });
  await writeFile(groupFile, `root:x:0:\nsandbox:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`, { mode: 0o644 });
  const runtimeDir = await installRuntime(root);
  return { dataDir: root, workspacesDir, poolDir, passwdFile, groupFile, reporterFile, runtimeDir };
}

/** Size and inode caps of a session's workspace tmpfs. */
export interface WorkspaceQuota {
  sizeBytes: number;
  inodes: number;
}

/** The default quota: 256 MiB and 16384 files and directories. */
export const DEFAULT_WORKSPACE_QUOTA: WorkspaceQuota = { sizeBytes: 256 * 1024 * 1024, inodes: 16384 };

/**
 * Creates an empty workspace owned by `uid` and returns the host path to bind at /workspace.
 * With a uid (we are root) it is a tmpfs of `quota`; without, a plain directory.
 */
export async function createWorkspace(
  paths: SandboxHostPaths,
  uid: number | undefined,
  quota: WorkspaceQuota = DEFAULT_WORKSPACE_QUOTA,
  under: 'workspaces' | 'pool' = 'workspaces',
): Promise<string> {
  const base = join(under === 'pool' ? paths.poolDir : paths.workspacesDir, randomHex(16));
  await mkdir(base, { mode: 0o711 });
  await chmod(base, 0o711);
  const ws = join(base, 'ws');
  await mkdir(ws, { mode: 0o700 });
  if (uid === undefined) return ws;
  const view = join(base, 'view');
  await mkdir(view, { mode: 0o700 });
  try {
    const size = Math.max(4096, Math.floor(quota.sizeBytes));
    const inodes = Math.max(16, Math.floor(quota.inodes));
    // As `mount -t tmpfs -o size=…,nr_inodes=…,mode=0700,uid=U,gid=U,nosuid,nodev sluice-ws ws`,
    // `mount --bind ws view` and `mount -o remount,bind,nosymfollow,nosuid,nodev,noexec view`.
    await mount('sluice-ws', ws, 'tmpfs', MS_NOSUID | MS_NODEV, `size=${size},nr_inodes=${inodes},mode=0700,uid=${uid},gid=${uid}`);
    await mount(ws, view, '', MS_BIND, '');
    await mount('none', view, '', MS_REMOUNT | MS_BIND | MS_NOSYMFOLLOW | MS_NOSUID | MS_NODEV | MS_NOEXEC, '');
  } catch (err) {
    await removeWorkspace(ws).catch(() => {});
    throw err;
  }
  return ws;
}

/**
 * Lists a pooled shell's workspace (createWorkspace under 'pool') among the sessions' and
 * returns its path there: a symlink to the pooled directory, which never moves. A sandbox or
 * kernel of the shell still starting resolves the old path later, so that path must stay.
 */
export async function adoptWorkspace(paths: SandboxHostPaths, ws: string): Promise<string> {
  const base = dirname(ws);
  const dest = join(paths.workspacesDir, basename(base));
  await symlink(base, dest);
  return join(dest, 'ws');
}

/**
 * The server's own path to a workspace's files: the `nosymfollow` view, where no symlink is
 * ever followed (ELOOP). Without root it is the workspace itself.
 */
export async function workspaceView(ws: string): Promise<string> {
  const view = join(dirname(ws), 'view');
  try {
    await stat(view);
    return view;
  } catch {
    return ws;
  }
}

/** Removes a workspace and everything in it (unmounting first); symlinks are never followed. */
export async function removeWorkspace(ws: string): Promise<void> {
  const base = basename(ws) === 'ws' ? dirname(ws) : ws;
  // An adopted shell's workspace is a link to its pooled directory (adoptWorkspace): remove both.
  const link = await lstat(base).then((st) => st.isSymbolicLink(), () => false);
  const real = link ? await realpath(base).catch(() => null) : base;
  if (real !== null) {
    await unmountUnder(real);
    await rm(real, { recursive: true, force: true, maxRetries: 3 });
  }
  if (link) await rm(base, { force: true });
}

/** Unmounts every mount at or below `dir`, deepest first (lazily if one is still busy). */
async function unmountUnder(dir: string): Promise<void> {
  let mounts: string;
  try {
    mounts = await readFile('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const root = resolve(dir);
  const targets = mounts
    .split('\n')
    .map((line) => decodeMountPath(line.split(' ')[1] ?? ''))
    .filter((p) => p === root || p.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) {
    await umount(t, 0).catch(() => umount(t, MNT_DETACH).catch(() => {}));
  }
}

/** /proc/self/mounts escapes space, tab, newline and backslash as octal (`\040`). */
function decodeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

// mount(2) and umount2(2) flags (linux/mount.h, sys/mount.h).
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_REMOUNT = 0x20;
const MS_NOSYMFOLLOW = 0x100;
const MS_BIND = 0x1000;
const MNT_DETACH = 0x2;

async function mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void> {
  return mounter.request(['m', source, target, fstype, String(flags), data], `mount ${target}`);
}

async function umount(target: string, flags: number): Promise<void> {
  return mounter.request(['u', target, String(flags)], `umount ${target}`);
}

/** How long one mount request may wait for its answer (mount(8) had 10 s too). */
const MOUNT_DEADLINE_MS = 10_000;

/**
 * The server's one mounter process (internal/mount-script.ts), started at its first request:
 * requests go in order and are answered in order. It holds the event loop open only while a
 * request waits. If it dies, or a request goes unanswered past its deadline (a mount that
 * hangs), the waiting requests fail, it is killed, and the next request starts a new mounter:
 * a stuck mount never leaves a server waiting in silence.
 *
 * @internal Exported for its tests; the server uses the one below.
 */
export class Mounter {
  private child: ChildProcess | null = null;
  private readonly waiting: { resolve(): void; reject(err: Error): void; what: string; timer: NodeJS.Timeout }[] = [];
  private out = '';

  constructor(private readonly opts: { deadlineMs?: number; script?: string } = {}) {}

  request(fields: string[], what: string): Promise<void> {
    const payload = Buffer.from(fields.join('\0'), 'utf8');
    if (fields.some((f) => f.includes('\0'))) return Promise.reject(new TypeError(`${what}: NUL in an argument`));
    const child = this.child ?? this.start();
    const deadlineMs = this.opts.deadlineMs ?? MOUNT_DEADLINE_MS;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.abandon(child, `${what}: no answer from the mounter in ${deadlineMs} ms`), deadlineMs);
      timer.unref();
      this.waiting.push({ resolve, reject, what, timer });
      if (this.waiting.length === 1) this.hold(child, true);
      child.stdin?.write(`${payload.length}\n`);
      child.stdin?.write(payload);
    });
  }

  private start(): ChildProcess {
    const { syscalls } = seccompArch(process.arch);
    if (syscalls.mount === undefined || syscalls.umount2 === undefined) throw new Error(`no mount syscalls known for ${process.arch}`);
    const child = spawn(PERL, ['-e', this.opts.script ?? MOUNT_SCRIPT, String(syscalls.mount), String(syscalls.umount2)], { env: {}, cwd: '/', stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    this.out = '';
    // EPIPE: it died; 'close' below fails what waits.
    child.stdin?.on('error', () => {});
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      if (this.child !== child) return;
      this.out += text;
      let nl: number;
      while ((nl = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        const w = this.waiting.shift();
        if (this.waiting.length === 0) this.hold(child, false);
        if (!w) continue;
        clearTimeout(w.timer);
        if (line === 'ok') w.resolve();
        else w.reject(new Error(`${w.what}: ${line.replace(/^err /, '')}`));
      }
    });
    const gone = (): void => this.abandon(child, 'the mounter process ended');
    child.on('error', gone);
    child.on('close', gone);
    this.hold(child, false);
    return child;
  }

  /** Fails what waits on `child` and lets it go (killed if still there); the next request starts another. */
  private abandon(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    this.child = null;
    this.hold(child, false);
    child.kill('SIGKILL');
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(why.startsWith(w.what) ? why : `${w.what}: ${why}`));
    }
  }

  /** Keeps the event loop alive while a request waits for its answer, and only then. */
  private hold(child: ChildProcess, on: boolean): void {
    for (const h of [child, child.stdin, child.stdout]) {
      const handle = h as { ref?(): void; unref?(): void } | null;
      if (on) handle?.ref?.();
      else handle?.unref?.();
    }
  }
}

const mounter = new Mounter();

/** Names of workspace directories currently on disk (for tests and diagnostics). */
export async function listWorkspaces(paths: SandboxHostPaths): Promise<string[]> {
  return readdir(paths.workspacesDir);
}

/**
 * Copies the helper files into the data directory: the sandbox's uid must be able to read what
 * it binds, and a checkout under /root (mode 700) would not be. The TypeScript compiler goes
 * along (package.json and its one-file build), so `require('typescript')` works inside.
 */
async function installRuntime(root: string): Promise<string> {
  const dest = join(root, 'runtime');
  const staging = join(root, `runtime.${process.pid}.tmp`);
  await rm(staging, { recursive: true, force: true });
  const source = fileURLToPath(new URL('../runtime', import.meta.url));
  await cp(source, staging, { recursive: true });
  const req = createRequire(import.meta.url);
  const tsDir = dirname(req.resolve('typescript/package.json'));
  await mkdir(join(staging, 'node', 'typescript', 'lib'), { recursive: true });
  await cp(join(tsDir, 'package.json'), join(staging, 'node', 'typescript', 'package.json'));
  await cp(join(tsDir, 'lib', 'typescript.js'), join(staging, 'node', 'typescript', 'lib', 'typescript.js'));
  await makeReadable(staging);
  await rm(dest, { recursive: true, force: true });
  await rename(staging, dest);
  return dest;
}

/** dirs 0755, files 0644 (0755 when executable by the owner). */
async function makeReadable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await makeReadable(p);
    else if (entry.isFile()) await chmod(p, ((await stat(p)).mode & 0o100) !== 0 ? 0o755 : 0o644);
  }
}
