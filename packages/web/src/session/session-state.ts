/**
 * Which session the page works in. Its id is kept in sessionStorage, so a reload goes on in the
 * same session (and kernel) while it lives; a session the server no longer has is replaced.
 */
import { NotFoundError, type Session } from '@sluice/sdk';
import type { AppClient } from '../api/app-client.js';

const STORAGE_KEY = 'sluice.sessionID';

export class SessionState {
  private id: string | null = null;

  constructor(
    private readonly client: AppClient,
    private readonly onChange: (id: string) => void,
  ) {}

  /** The current session's handle (the current client's: a new key makes a new client). */
  get session(): Session {
    if (this.id === null) throw new Error('no session yet');
    return this.client.sluice.session(this.id);
  }

  /** Takes the stored session if the server still has it, else creates one. */
  async open(language: string): Promise<void> {
    const stored = sessionStorage.getItem(STORAGE_KEY);
    if (stored !== null) {
      try {
        await this.client.authorized((s) => s.session(stored).refresh());
        this.set(stored);
        return;
      } catch (err: unknown) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    await this.create(language);
  }

  /** Replaces the session with a new one; the old one is deleted (its processes and files go). */
  async renew(language: string): Promise<void> {
    const old = this.id;
    await this.create(language);
    if (old !== null) await this.client.sluice.session(old).delete().catch(() => undefined);
  }

  private async create(language: string): Promise<void> {
    const session = await this.client.authorized((s) => s.sessions.create({ language }));
    this.set(session.id);
  }

  private set(id: string): void {
    this.id = id;
    sessionStorage.setItem(STORAGE_KEY, id);
    this.onChange(id);
  }
}
