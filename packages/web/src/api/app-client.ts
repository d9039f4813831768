/**
 * The page's one Sluice client, built with this tab's API key and the {@link ConnectionWatch}
 * fetch. A call refused with 401 asks for a key (the dialog), rebuilds the client with it and is
 * tried again: the key lives in sessionStorage and travels only as the SDK's bearer token.
 */
import { Sluice, UnauthorizedError } from '@sluice/sdk';
import type { ConnectionWatch } from './connection-watch.js';
import { promptForKey } from './key-prompt.js';
import { forgetKey, loadKey, saveKey } from './key-store.js';

export class AppClient {
  private client: Sluice;

  constructor(private readonly watch: ConnectionWatch) {
    this.client = this.make(loadKey());
  }

  /** The current client (a new one after a key was entered: take it anew for each call). */
  get sluice(): Sluice {
    return this.client;
  }

  /** Runs `call`; on 401, asks for a key, rebuilds the client and runs it again. */
  async authorized<T>(call: (sluice: Sluice) => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await call(this.client);
      } catch (err: unknown) {
        if (!(err instanceof UnauthorizedError)) throw err;
        const had = loadKey() !== undefined;
        forgetKey();
        const key = await promptForKey(had ? 'The server refused this key. Enter another one.' : 'This server needs an API key.');
        saveKey(key);
        this.client.close();
        this.client = this.make(key);
      }
    }
  }

  private make(apiKey: string | undefined): Sluice {
    return new Sluice({ baseURL: location.origin, apiKey, fetch: this.watch.fetch });
  }
}
