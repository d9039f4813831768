/** Leaving the process once a client command is over, after its output has reached the pipes. */

/**
 * Exits with `code` once stdout and stderr have flushed. Explicitly, because a client command may
 * leave handles behind that would keep Node alive (a forwarded terminal stdin, keep-alive sockets).
 */
export async function exitWith(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * Keeps a write error on stdout or stderr (EPIPE when the reader went away) from crashing the
 * process with a stack trace; the commands that stream output watch for it themselves.
 */
export function ignoreOutputErrors(): void {
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
}
