/**
 * Session workspaces on the host: one directory each under `<dataDir>/workspaces`, owned by
 * the session's uid, plus the synthetic /etc/passwd and /etc/group the sandboxes see.
 */
import { chmod, chown, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { SANDBOX_UID } from './bwrap-options.js';
import { REPORTER_SCRIPT } from './internal/reporter-script.js';

/** Host paths a sandbox host needs. */
export interface SandboxHostPaths {
  dataDir: string;
  workspacesDir: string;
  passwdFile: string;
  groupFile: string;
  /** The status reporter script, bound read-only into every sandbox. */
  reporterFile: string;
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
  // Workspaces of a previous run belong to sessions that died with it.
  await rm(workspacesDir, { recursive: true, force: true });
  await mkdir(workspacesDir, { mode: 0o711 });
  await chmod(workspacesDir, 0o711);
  const etc = join(root, 'etc');
  await mkdir(etc, { recursive: true, mode: 0o755 });
  await chmod(etc, 0o755);
  const passwdFile = join(etc, 'passwd');
  const groupFile = join(etc, 'group');
  await writeFile(passwdFile, `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${SANDBOX_UID}:${SANDBOX_UID}:sandbox:/workspace:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`, { mode: 0o644 });
  const reporterFile = join(etc, 'exec.pl');
  await writeFile(reporterFile, REPORTER_SCRIPT, { mode: 0o644 });
  await writeFile(groupFile, `root:x:0:\nsandbox:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`, { mode: 0o644 });
  return { dataDir: root, workspacesDir, passwdFile, groupFile, reporterFile };
}

/** Creates an empty workspace owned by `uid` (when given) and returns its host path. */
export async function createWorkspace(paths: SandboxHostPaths, uid: number | undefined): Promise<string> {
  const dir = join(paths.workspacesDir, randomBytes(16).toString('hex'));
  await mkdir(dir, { mode: 0o700 });
  if (uid !== undefined) await chown(dir, uid, uid);
  return dir;
}

/** Removes a workspace and everything in it; symlinks inside are removed, never followed. */
export async function removeWorkspace(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Names of workspace directories currently on disk (for tests and diagnostics). */
export async function listWorkspaces(paths: SandboxHostPaths): Promise<string[]> {
  return readdir(paths.workspacesDir);
}
