/**
 * The open WebSocket connections of a server: admission against the server-wide and per-tenant
 * caps, and a handle on all of them for shutdown and session checks.
 *
 * No knob of its own: a socket is a connection, so the caps derive from SLUICE_MAX_CONNECTIONS.
 * WebSockets may take half of the connections (the other half stays free for plain HTTP:
 * health checks, runs, files), and with API keys one tenant may take a quarter of those.
 */

/** What the registry holds: anything it can close. */
export interface RegisteredSocket {
  readonly owner: string | null;
}

/** Caps derived from the server's connection limit. */
export function socketCaps(maxConnections: number): { maxSockets: number; maxSocketsPerTenant: number } {
  const maxSockets = Math.max(1, Math.floor(maxConnections / 2));
  return { maxSockets, maxSocketsPerTenant: Math.max(1, Math.ceil(maxSockets / 4)) };
}

export class SocketRegistry<S extends RegisteredSocket> {
  private readonly open = new Set<S>();
  private readonly perOwner = new Map<string, number>();

  constructor(
    readonly maxSockets: number,
    readonly maxSocketsPerTenant: number,
  ) {}

  /** Null when one more socket of `owner` fits; otherwise why not, for the TOO_MANY_SOCKETS close reason. */
  admissionProblem(owner: string | null): string | null {
    if (this.open.size >= this.maxSockets) {
      return `the server has ${this.open.size} WebSockets open, its maximum (half of SLUICE_MAX_CONNECTIONS); retry later`;
    }
    if (owner === null) return null;
    const mine = this.perOwner.get(owner) ?? 0;
    if (mine >= this.maxSocketsPerTenant) {
      return `this API key has ${mine} WebSockets open, its maximum; close one (one socket multiplexes many executions)`;
    }
    return null;
  }

  add(socket: S): void {
    if (this.open.has(socket)) return;
    this.open.add(socket);
    if (socket.owner !== null) this.perOwner.set(socket.owner, (this.perOwner.get(socket.owner) ?? 0) + 1);
  }

  delete(socket: S): void {
    if (!this.open.delete(socket)) return;
    if (socket.owner === null) return;
    const left = (this.perOwner.get(socket.owner) ?? 1) - 1;
    if (left === 0) this.perOwner.delete(socket.owner);
    else this.perOwner.set(socket.owner, left);
  }

  get size(): number {
    return this.open.size;
  }

  /** A snapshot of the open sockets (safe to close them while iterating). */
  all(): S[] {
    return [...this.open];
  }
}
