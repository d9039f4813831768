/**
 * The playground page: wires the editor, the run panel, the output, the files panel and the
 * agent tab to one client of `@sluice/sdk` on this origin. `body[data-state]` is `loading`,
 * `ready` or `failed` (for styles and tests).
 */
import type { Language, LanguageInfo, Mode } from '@sluice/sdk';
import { AppClient } from './api/app-client.js';
import { ConnectionWatch } from './api/connection-watch.js';
import { linkIndicator } from './api/link-indicator.js';
import { AgentPanel } from './agent/agent-panel.js';
import { byID } from './dom/by-id.js';
import { el } from './dom/el.js';
import { CodeEditor } from './editor/code-editor.js';
import { isKnownLanguage, sampleCode } from './editor/language-support.js';
import { FilesPanel } from './files/files-panel.js';
import { ProgressView } from './output/progress-view.js';
import { TerminalView } from './output/terminal-view.js';
import { RunPanel } from './run/run-panel.js';
import { StatusLine } from './run/status-line.js';
import { SessionState } from './session/session-state.js';
import { setUpTabs } from './tabs.js';

async function main(): Promise<void> {
  const status = new StatusLine(byID('status', HTMLParagraphElement));
  const client = new AppClient(new ConnectionWatch(linkIndicator(byID('connection', HTMLParagraphElement))));
  setUpTabs();

  const [info, languages] = [await client.authorized((s) => s.info()), await client.authorized((s) => s.languages())];
  const installed = languages.filter((l): l is LanguageInfo & { language: Language } => l.installed && isKnownLanguage(l.language));
  const first = installed[0];
  if (first === undefined) throw new Error('this server has no language installed (GET /api/languages)');
  const picker = byID('language', HTMLSelectElement);
  for (const l of languages) {
    const label = l.installed ? `${l.language}${l.version === null ? '' : ` (${l.version})`}` : `${l.language} (not installed)`;
    picker.append(el('option', { text: label, attrs: l.installed && isKnownLanguage(l.language) ? { value: l.language } : { value: l.language, disabled: '' } }));
  }
  picker.value = first.language;
  let language: Language = first.language;

  const sessionID = byID('session-id', HTMLElement);
  const sessions = new SessionState(client, (id) => (sessionID.textContent = id));
  await sessions.open(language);

  const modePicker = byID('mode', HTMLSelectElement);
  let runPanel: RunPanel | null = null;
  const editor = new CodeEditor(byID('editor', HTMLDivElement), language, sampleCode(language), () => void runPanel?.run());
  picker.addEventListener('change', () => {
    if (!isKnownLanguage(picker.value)) return;
    // The sample of the old language gives way to the new one's; code someone typed stays.
    if (editor.code === sampleCode(language)) editor.code = sampleCode(picker.value);
    language = picker.value;
    editor.setLanguage(language);
  });

  const files = new FilesPanel(client, sessions);
  const terminal = new TerminalView(byID('output', HTMLDivElement));
  runPanel = new RunPanel({
    client,
    sessions,
    terminal,
    progress: new ProgressView(),
    status,
    runButton: byID('run', HTMLButtonElement),
    cancelButton: byID('cancel', HTMLButtonElement),
    source: () => ({ code: editor.code, language, mode: modeOf(modePicker.value) }),
    onFinished: () => void files.refresh(),
  });
  byID('clear', HTMLButtonElement).addEventListener('click', () => terminal.clear());

  byID('restart', HTMLButtonElement).addEventListener('click', () => {
    void (async () => {
      try {
        const restarted = await client.authorized(() => sessions.session.restart());
        status.show(restarted.length === 0 ? 'Restarted: no kernel was running' : `Restarted the ${restarted.join(', ')} kernel${restarted.length === 1 ? '' : 's'}: their state is gone`, 'ok');
      } catch (err: unknown) {
        status.show(`Restart failed: ${message(err)}`, 'failed');
      }
    })();
  });
  byID('new-session', HTMLButtonElement).addEventListener('click', () => {
    void (async () => {
      try {
        await sessions.renew(language);
        terminal.clear();
        status.show('A new session: fresh kernels and an empty workspace', 'ok');
        await files.refresh();
      } catch (err: unknown) {
        status.show(`Could not create a session: ${message(err)}`, 'failed');
      }
    })();
  });

  if (info.agent) {
    byID('tab-agent', HTMLButtonElement).hidden = false;
    new AgentPanel(client, sessions, () => void files.refresh());
  }
  await files.refresh();
  document.body.dataset['state'] = 'ready';
  editor.focus();
}

function modeOf(value: string): Mode | undefined {
  return value === 'kernel' || value === 'process' ? value : undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

main().catch((err: unknown) => {
  document.body.dataset['state'] = 'failed';
  new StatusLine(byID('status', HTMLParagraphElement)).show(`The playground could not start: ${message(err)}`, 'failed');
});
