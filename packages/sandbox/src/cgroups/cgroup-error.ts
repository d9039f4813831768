/**
 * The one error type of the cgroup module: every failure names the operation, the file and the
 * errno, because "EBUSY" alone says nothing about which of a dozen control files refused.
 */

/** A cgroup filesystem operation that failed; `path` is the file or directory, `code` the errno name. */
export class CgroupError extends Error {
  override readonly name = 'CgroupError';
  /** What was attempted: `read`, `write`, `mkdir`, `rmdir`, `list`, `kill`, `detect`, `config`. */
  readonly op: string;
  /** The control file or directory involved (empty for pure validation errors). */
  readonly path: string;
  /** errno name (`EBUSY`, `EACCES`…), or `EINVAL` for validation errors raised by this module. */
  readonly code: string;

  constructor(op: string, path: string, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.op = op;
    this.path = path;
    this.code = code;
  }
}

/** errno name of a Node fs error, or `UNKNOWN`. */
export function errnoOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return 'UNKNOWN';
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EBUSY: 'device or resource busy',
  EINVAL: 'invalid argument',
  ENOTEMPTY: 'directory not empty',
  ENOSPC: 'no space left on device',
  ESRCH: 'no such process',
  EOPNOTSUPP: 'operation not supported',
};

/** Wraps an fs error into a CgroupError whose message reads `cgroup: cannot <what> <path>: EBUSY (…)`. */
export function wrapFSError(op: string, what: string, path: string, err: unknown): CgroupError {
  const code = errnoOf(err);
  const text = ERRNO_TEXT[code] ?? (err instanceof Error ? err.message : String(err));
  return new CgroupError(op, path, code, `cgroup: cannot ${what} ${path}: ${code} (${text})`, { cause: err });
}
