/** The status line under the output: what runs, how it ended, what failed (read out politely). */

/** How the status reads: under way, a success, a failure. */
export type Outcome = 'busy' | 'ok' | 'failed';

export class StatusLine {
  constructor(private readonly el: HTMLElement) {}

  show(text: string, outcome: Outcome): void {
    this.el.textContent = text;
    this.el.dataset['outcome'] = outcome;
  }
}
