/**
 * Reads and writes of cgroup control files and directories, with errors that name the file and
 * the errno (CgroupError). Writes open the file without O_CREAT, so a control file the kernel
 * does not provide fails with ENOENT instead of silently becoming a regular file.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, readdir, rmdir } from 'node:fs/promises';
import { errnoOf, wrapFSError } from './cgroup-error.js';

/** Text of a control file. */
export async function readControl(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw wrapFSError('read', 'read', path, err);
  }
}

/** Text of a control file, or undefined when the kernel does not provide it (ENOENT). */
export async function readOptionalControl(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw wrapFSError('read', 'read', path, err);
  }
}

/** Writes `value` to a control file in one write(2), as cgroupfs expects. */
export async function writeControl(path: string, value: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, constants.O_WRONLY);
  } catch (err) {
    throw wrapFSError('write', `open for writing`, path, err);
  }
  try {
    await handle.write(value);
  } catch (err) {
    throw wrapFSError('write', `write ${JSON.stringify(value)} to`, path, err);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Creates a directory; resolves false if it already existed. */
export async function makeGroupDir(path: string): Promise<boolean> {
  try {
    await mkdir(path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw wrapFSError('mkdir', 'create cgroup', path, err);
  }
}

/** Removes a cgroup directory; resolves false if it was already gone. */
export async function removeGroupDir(path: string): Promise<boolean> {
  try {
    await rmdir(path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw wrapFSError('rmdir', 'remove cgroup', path, err);
  }
}

/** Names of the child cgroups (subdirectories) of a group; [] when the group does not exist. */
export async function listChildGroups(path: string): Promise<string[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw wrapFSError('list', 'list', path, err);
  }
}

/** True if the path exists (for control files that only some kernels provide). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
