/**
 * A session's workspace (`/workspace` inside the sandbox) from outside: upload, download, list
 * and delete (docs/files.md). Bytes go through untouched, so binary files round-trip exactly.
 */
import type { ClientContext } from './internal/client-context.js';
import { readFileEntry, readList, type FileEntry } from './views.js';

/** Options of one files request. */
export interface FileRequestOptions {
  signal?: AbortSignal | undefined;
}

/** The answer to an upload. */
export interface WrittenFile {
  /** The path as the server normalised it, relative to the workspace. */
  path: string;
  size: number;
}

/** `session.files`: reads, writes, lists and deletes files in the session's workspace (paths relative to it). */
export class SessionFiles {
  /** @internal Use `session.files`. */
  constructor(
    private readonly ctx: ClientContext,
    private readonly sessionID: string,
  ) {}

  /** Writes a file (creating parent directories); a string is written as UTF-8. */
  async write(path: string, data: string | Uint8Array | Blob, opts: FileRequestOptions = {}): Promise<WrittenFile> {
    const body = typeof data === 'string' || data instanceof Blob ? data : new Blob([copyToArrayBuffer(data)]);
    const value = await this.ctx.http.json('PUT', this.filePath(path), {
      body,
      headers: { 'content-type': 'application/octet-stream' },
      signal: opts.signal,
    });
    const written = value as Partial<WrittenFile> | undefined;
    return { path: typeof written?.path === 'string' ? written.path : path, size: typeof written?.size === 'number' ? written.size : -1 };
  }

  /** Reads a file's bytes. */
  async read(path: string, opts: FileRequestOptions = {}): Promise<Uint8Array> {
    const what = `GET ${this.filePath(path)}`;
    const res = await this.ctx.http.request('GET', this.filePath(path), { signal: opts.signal });
    return this.ctx.http.readBytes(res, what, opts.signal);
  }

  /** Reads a file as UTF-8 text (invalid bytes become U+FFFD). */
  async readText(path: string, opts: FileRequestOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(path, opts));
  }

  /** A file's bytes as a stream, for large files (the caller reads or cancels it). */
  async readStream(path: string, opts: FileRequestOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.ctx.http.request('GET', this.filePath(path), { signal: opts.signal, timeoutMs: 0 });
    if (res.body === null) return new ReadableStream({ start: (c) => c.close() });
    return res.body;
  }

  /** Lists a directory of the workspace (the workspace itself without `dir`). */
  async list(dir?: string, opts: FileRequestOptions = {}): Promise<FileEntry[]> {
    const value = await this.ctx.http.json('GET', `${this.base()}/files`, { query: { dir }, signal: opts.signal });
    return readList(value, 'entries', readFileEntry);
  }

  /** Deletes a file, or a directory and everything in it. */
  async delete(path: string, opts: FileRequestOptions = {}): Promise<void> {
    const res = await this.ctx.http.request('DELETE', this.filePath(path), { signal: opts.signal });
    await res.body?.cancel();
  }

  private base(): string {
    return `/api/sessions/${encodeURIComponent(this.sessionID)}`;
  }

  /**
   * Each segment percent-encoded. `.` and `..` are refused here, not left to the server: URL
   * parsing (fetch's, a browser's) removes dot segments, so `../../other` would otherwise reach
   * another endpoint (`DELETE /api/sessions/other`). A leading `/workspace/` is the same file as
   * the code inside sees it.
   */
  private filePath(path: string): string {
    const relative = typeof path === 'string' ? path.replace(/^\/workspace\//, '') : path;
    const segments = typeof relative === 'string' ? relative.split('/') : [];
    if (typeof relative !== 'string' || relative === '' || segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new TypeError(`path: expected a file path relative to the workspace (no empty, "." or ".." segment), got ${JSON.stringify(path)}`);
    }
    return `${this.base()}/files/${segments.map(encodeURIComponent).join('/')}`;
  }
}

/** The bytes of a view in an ArrayBuffer of their own (a Blob part must not be a shared buffer). */
function copyToArrayBuffer(data: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(data.byteLength);
  new Uint8Array(out).set(data);
  return out;
}
