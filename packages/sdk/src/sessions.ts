/** `sluice.sessions`: create, inspect, list and delete sessions. */
import { validateSessionID } from '@sluice/protocol';
import type { ClientContext } from './internal/client-context.js';
import type { Session } from './session.js';
import { limitsToWire, readList, readSessionInfo, type SessionLimits } from './views.js';

/** Options of a new session (every one optional; see docs/api.md). */
export interface CreateSessionOptions {
  /** Letters, digits, `-` and `_`, 1–64 characters; default: 128 random bits. */
  id?: string | undefined;
  /** Default language of its runs (default `python`). */
  language?: string | undefined;
  /** Environment variables of every run (values are never echoed back). */
  env?: Record<string, string> | undefined;
  /** Default execution timeout, seconds. */
  timeout?: number | undefined;
  /** Seconds without activity before the server destroys the session (default 900). */
  idleTTL?: number | undefined;
  /** Ask for network access (FORBIDDEN unless the server allows it). */
  network?: boolean | undefined;
  limits?: SessionLimits | undefined;
  signal?: AbortSignal | undefined;
}

/** `sluice.sessions`: creates, lists and deletes sessions; each call is one HTTP request. */
export class Sessions {
  /** @internal Use `sluice.sessions`. */
  constructor(
    private readonly ctx: ClientContext,
    private readonly handle: (id: string) => Session,
    private readonly forget: (id: string) => void,
  ) {}

  /** Creates a session (`POST /api/sessions`). */
  async create(opts: CreateSessionOptions = {}): Promise<Session> {
    const body: Record<string, unknown> = {};
    if (opts.id !== undefined) body['id'] = checkID(opts.id);
    if (opts.language !== undefined) body['language'] = opts.language;
    if (opts.env !== undefined) body['env'] = opts.env;
    if (opts.timeout !== undefined) body['timeout'] = opts.timeout;
    if (opts.idleTTL !== undefined) body['idle_ttl'] = opts.idleTTL;
    if (opts.network !== undefined) body['network'] = opts.network;
    if (opts.limits !== undefined) body['limits'] = limitsToWire(opts.limits);
    const info = readSessionInfo(await this.ctx.http.json('POST', '/api/sessions', { json: body, signal: opts.signal }));
    const session = this.handle(info.id);
    session.settings = info;
    return session;
  }

  /** Fetches a session (NotFoundError if there is none). */
  async get(id: string, opts: { signal?: AbortSignal } = {}): Promise<Session> {
    const session = this.handle(checkID(id));
    await session.refresh(opts);
    return session;
  }

  /** Every session of this API key. */
  async list(opts: { signal?: AbortSignal } = {}): Promise<Session[]> {
    const infos = readList(await this.ctx.http.json('GET', '/api/sessions', { signal: opts.signal }), 'sessions', readSessionInfo);
    return infos.map((info) => {
      const session = this.handle(info.id);
      session.settings = info;
      return session;
    });
  }

  /** Destroys a session: every process killed, the workspace removed. */
  async delete(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.handle(checkID(id)).delete(opts);
    this.forget(id);
  }
}

/** Checks a session id where it enters, with the server's own rule and message. */
export function checkID(id: string): string {
  const r = validateSessionID(id, 'session id');
  if (!r.ok) throw new TypeError(r.message);
  return r.value;
}
