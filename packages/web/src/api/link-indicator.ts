/** Shows the streams' connection state (#connection, a polite live region) as the {@link ConnectionWatch} reports it. */
import { assertNever } from '../assert-never.js';
import type { LinkState } from './connection-watch.js';

/** A reporter that writes `state` into `el` (text and `data-state`). */
export function linkIndicator(el: HTMLElement): (state: LinkState) => void {
  return (state) => {
    el.dataset['state'] = state.kind;
    switch (state.kind) {
      case 'idle':
        el.textContent = '';
        break;
      case 'dropped':
        el.textContent = 'Connection lost: reconnecting…';
        break;
      case 'reconnecting':
        el.textContent = `Connection lost: reconnecting (attempt ${state.attempt})…`;
        break;
      case 'resumed':
        el.textContent = state.afterSeq === null ? 'Reconnected: the stream resumed' : `Reconnected: resumed after event ${state.afterSeq}`;
        break;
      default:
        assertNever(state, 'link state');
    }
  };
}
