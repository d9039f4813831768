/**
 * File operations on a session's workspace for the files API. They go through the server's
 * `nosymfollow` view of the workspace (see @sluice/sandbox workspace.ts), so a symlink the
 * sandbox planted anywhere in a path fails with ELOOP instead of reaching a host file; every
 * open also uses O_NOFOLLOW, and O_NONBLOCK so that a planted FIFO cannot hang the server.
 * Where there is no such view (a server without root), every component is checked with lstat.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rm, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiError } from '../api-error.js';
import { ExactFileStream } from './exact-file-stream.js';

/** Where a workspace's files are, for the server. */
export interface WorkspaceRoot {
  /** The directory to operate in (the nosymfollow view when there is one). */
  dir: string;
  /** True when `dir` refuses symlinks by itself (nosymfollow). */
  symlinkSafe: boolean;
  /** Owner of new files and directories (the session's host uid), when we are root. */
  uid: number | undefined;
}

/** One entry of a directory listing. */
export interface FileEntry {
  name: string;
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  modified_at: string;
}

/** An open file, ready to stream: `stream` gives exactly `size` bytes (see exact-file-stream.ts). */
export interface OpenedFile {
  size: number;
  stream: ExactFileStream;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Opens a regular file for download; its stream closes the file. */
export async function openFile(root: WorkspaceRoot, segments: string[]): Promise<OpenedFile> {
  const path = await resolve(root, segments);
  const fh = await open(path, READ_FLAGS).catch((err: NodeJS.ErrnoException) => {
    throw fsError(err, segments);
  });
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new ApiError('INVALID_REQUEST', `path: ${show(segments)} is a directory; list it with GET …/files?dir=${segments.join('/')}`);
    if (!st.isFile()) throw new ApiError('FORBIDDEN', `path: ${show(segments)} is not a regular file (a FIFO, socket or device); the files API serves regular files only`);
    // The length is fixed here, from the open file: the sandbox may still be writing it.
    const shrank = (got: number): ApiError =>
      new ApiError('SESSION_BUSY', `path: ${show(segments)} shrank from ${st.size} to ${got} bytes while it was read (code in the session is writing it); retry once it is done`);
    return { size: st.size, stream: new ExactFileStream(fh, st.size, shrank) };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Writes a file (creating parent directories), owned by the session's uid. */
export async function writeFile(root: WorkspaceRoot, segments: string[], data: Buffer): Promise<void> {
  if (segments.length === 0) throw new ApiError('INVALID_REQUEST', 'path: expected a file path after /files/, got nothing');
  const parent = await ensureDir(root, segments.slice(0, -1));
  const path = join(parent, segments[segments.length - 1] as string);
  const fh = await open(path, WRITE_FLAGS, 0o644).catch((err: NodeJS.ErrnoException) => {
    throw fsError(err, segments);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ApiError('FORBIDDEN', `path: ${show(segments)} exists and is not a regular file`);
    await fh.writeFile(data).catch((err: NodeJS.ErrnoException) => {
      throw fsError(err, segments);
    });
    if (root.uid !== undefined) await fh.chown(root.uid, root.uid);
  } finally {
    await fh.close();
  }
}

/** Deletes a file, or a directory and everything in it (links inside are removed, never followed). */
export async function deletePath(root: WorkspaceRoot, segments: string[]): Promise<void> {
  if (segments.length === 0) throw new ApiError('INVALID_REQUEST', 'path: expected a path after /files/; the workspace itself cannot be deleted (delete the session)');
  const path = await resolve(root, segments.slice(0, -1));
  const target = join(path, segments[segments.length - 1] as string);
  await lstat(target).catch((err: NodeJS.ErrnoException) => {
    throw fsError(err, segments);
  });
  await rm(target, { recursive: true, force: false });
}

/** Lists a directory (the workspace itself for no segments). */
export async function listDir(root: WorkspaceRoot, segments: string[]): Promise<FileEntry[]> {
  const dir = await resolve(root, segments);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw fsError(err, segments);
  });
  const entries: FileEntry[] = [];
  for (const name of names.sort()) {
    const st = await lstat(join(dir, name)).catch(() => null);
    if (!st) continue;
    entries.push({
      name,
      path: [...segments, name].join('/'),
      type: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other',
      size: st.size,
      modified_at: st.mtime.toISOString(),
    });
  }
  return entries;
}

/** Host path of `segments` under the root; without a nosymfollow view, refuses any symlink on the way. */
async function resolve(root: WorkspaceRoot, segments: string[]): Promise<string> {
  let path = root.dir;
  for (const [i, s] of segments.entries()) {
    path = join(path, s);
    if (root.symlinkSafe) continue;
    const st = await lstat(path).catch(() => null);
    if (st?.isSymbolicLink()) throw symlinkError(segments.slice(0, i + 1));
  }
  return path;
}

/** Creates the directories of `segments` as needed (owned by the session's uid); returns the last. */
async function ensureDir(root: WorkspaceRoot, segments: string[]): Promise<string> {
  let path = root.dir;
  for (const [i, s] of segments.entries()) {
    path = join(path, s);
    const created = await mkdir(path, { mode: 0o755 }).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw fsError(err, segments.slice(0, i + 1));
      },
    );
    const st = await lstat(path);
    if (st.isSymbolicLink()) throw symlinkError(segments.slice(0, i + 1));
    if (!st.isDirectory()) throw new ApiError('INVALID_REQUEST', `path: ${show(segments.slice(0, i + 1))} exists and is not a directory`);
    if (created && root.uid !== undefined) await chown(path, root.uid, root.uid);
  }
  return path;
}

function show(segments: string[]): string {
  return JSON.stringify(segments.join('/') || '.');
}

function symlinkError(segments: string[]): ApiError {
  return new ApiError('FORBIDDEN', `path: ${show(segments)} is a symbolic link; the files API never follows links`);
}

/** Maps a filesystem error onto the contract's table. */
function fsError(err: NodeJS.ErrnoException, segments: string[]): ApiError {
  switch (err.code) {
    case 'ENOENT':
      return new ApiError('NOT_FOUND', `path: ${show(segments)} does not exist in the workspace`);
    case 'ENOTDIR':
      return new ApiError('NOT_FOUND', `path: a parent of ${show(segments)} is not a directory`);
    case 'ELOOP':
      // The nosymfollow view refused a link somewhere on the path.
      return new ApiError('FORBIDDEN', `path: ${show(segments)} goes through a symbolic link; the files API never follows links`);
    case 'EISDIR':
      return new ApiError('INVALID_REQUEST', `path: ${show(segments)} is a directory`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new ApiError('PAYLOAD_TOO_LARGE', `path: the workspace is full (its size or file-count limit) writing ${show(segments)}`);
    case 'EFBIG':
      return new ApiError('PAYLOAD_TOO_LARGE', `path: ${show(segments)} would exceed the largest file allowed`);
    case 'ENAMETOOLONG':
      return new ApiError('INVALID_REQUEST', `path: ${show(segments)} is too long`);
    case 'EACCES':
    case 'EPERM':
      return new ApiError('FORBIDDEN', `path: ${show(segments)}: permission denied`);
    default:
      return new ApiError('INTERNAL', `path: ${show(segments)}: ${err.code ?? err.message}`);
  }
}
