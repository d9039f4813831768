/** The Code / Agent tabs (WAI-ARIA tabs: arrow keys move between them, Tab enters the panel). */
import { byID } from './dom/by-id.js';

export function setUpTabs(): void {
  const tabs = [byID('tab-code', HTMLButtonElement), byID('tab-agent', HTMLButtonElement)];
  const select = (tab: HTMLButtonElement): void => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(t.getAttribute('aria-controls') ?? '');
      if (panel) panel.hidden = !on;
    }
  };
  for (const tab of tabs) {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (ev) => {
      if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
      const visible = tabs.filter((t) => !t.hidden);
      const i = visible.indexOf(tab);
      const next = visible[(i + (ev.key === 'ArrowRight' ? 1 : visible.length - 1)) % visible.length];
      if (next) {
        select(next);
        next.focus();
      }
    });
  }
}
