/**
 * The API key of this tab: kept in sessionStorage (gone when the tab closes, never shared with
 * other tabs or sent anywhere but as the SDK's bearer token to this origin).
 */
const KEY = 'sluice.apiKey';

/** The stored key, or undefined. */
export function loadKey(): string | undefined {
  const k = sessionStorage.getItem(KEY);
  return k === null || k === '' ? undefined : k;
}

/** Stores the key for this tab. */
export function saveKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

/** Forgets a key the server refused. */
export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}
