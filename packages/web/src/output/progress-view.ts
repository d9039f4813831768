/** The progress bar of the running execution, from its `progress` events (the latest wins). */
import type { ProgressEvent } from '@sluice/sdk';
import { byID } from '../dom/by-id.js';

export class ProgressView {
  private readonly box = byID('progress', HTMLDivElement);
  private readonly bar = byID('progress-bar', HTMLProgressElement);
  private readonly label = byID('progress-label', HTMLLabelElement);

  /** Shows the state `ev` reports: a determinate bar with `percent`, an indeterminate one without. */
  update(ev: ProgressEvent): void {
    this.box.hidden = false;
    if (ev.percent === undefined) this.bar.removeAttribute('value');
    else this.bar.value = ev.percent;
    const pct = ev.percent === undefined ? '' : `${Math.round(ev.percent)}%`;
    this.label.textContent = [ev.message ?? 'Progress', pct].filter((s) => s !== '').join(' ');
  }

  /** Hides the bar (a new run begins). */
  reset(): void {
    this.box.hidden = true;
    this.bar.value = 0;
    this.label.textContent = 'Progress';
  }
}
