/**
 * Run and Cancel: streams one execution at a time into the output pane, event by event as the
 * SDK yields them (lines appear as they are printed), and tells its end as `done` says it.
 * `body[data-run]` is `running` or `idle` (for styles and tests).
 */
import type { ExecutionEvent, ExecutionStream, Mode } from '@sluice/sdk';
import type { AppClient } from '../api/app-client.js';
import { assertNever } from '../assert-never.js';
import type { ProgressView } from '../output/progress-view.js';
import { renderResult } from '../output/result-view.js';
import type { TerminalView } from '../output/terminal-view.js';
import type { SessionState } from '../session/session-state.js';
import { describeDone } from './describe-done.js';
import type { StatusLine } from './status-line.js';

export interface RunPanelDeps {
  client: AppClient;
  sessions: SessionState;
  terminal: TerminalView;
  progress: ProgressView;
  status: StatusLine;
  runButton: HTMLButtonElement;
  cancelButton: HTMLButtonElement;
  /** What to run: the editor's code, the picked language and mode. */
  source(): { code: string; language: string; mode: Mode | undefined };
  /** Called after every execution ends (the files it wrote show up). */
  onFinished(): void;
}

export class RunPanel {
  private current: ExecutionStream | null = null;

  constructor(private readonly d: RunPanelDeps) {
    d.runButton.addEventListener('click', () => void this.run());
    d.cancelButton.addEventListener('click', () => void this.cancel());
    this.setRunning(false);
  }

  /** Runs the editor's code, unless a run is under way. */
  async run(): Promise<void> {
    if (this.current !== null) return;
    const { code, language, mode } = this.d.source();
    const { terminal, progress, status } = this.d;
    terminal.clear();
    progress.reset();
    status.show(`Starting ${language}…`, 'busy');
    this.setRunning(true);
    const started = performance.now();
    try {
      await this.d.client.authorized(async () => {
        const stream = this.d.sessions.session.stream(code, { language, mode });
        this.current = stream;
        for await (const ev of stream) this.show(ev);
      });
    } catch (err: unknown) {
      status.show(`Lost the execution: ${err instanceof Error ? err.message : String(err)} (after ${Math.round(performance.now() - started)} ms)`, 'failed');
    } finally {
      this.current = null;
      this.setRunning(false);
      this.d.onFinished();
    }
  }

  /** Asks the server to cancel the running execution; its `done` (reason `cancelled`) ends it. */
  async cancel(): Promise<void> {
    const stream = this.current;
    if (stream === null) return;
    this.d.status.show('Cancelling…', 'busy');
    try {
      await stream.cancel();
    } catch (err: unknown) {
      this.d.status.show(`Cancel failed: ${err instanceof Error ? err.message : String(err)}`, 'failed');
    }
  }

  private show(ev: ExecutionEvent): void {
    const { terminal, progress, status } = this.d;
    switch (ev.type) {
      case 'start':
        status.show(`Running ${ev.language} (${ev.mode}) · execution ${ev.execution_id}`, 'busy');
        break;
      case 'stdout':
      case 'stderr':
        terminal.write(ev.type, ev.content);
        break;
      case 'progress':
        progress.update(ev);
        break;
      case 'result': {
        const r = renderResult(ev.data);
        terminal.block(r.node, r.dispose);
        break;
      }
      case 'truncated':
        terminal.note(`… ${ev.dropped_bytes} bytes of ${ev.stream} were dropped here (the output limit)`);
        break;
      case 'gap':
        terminal.note(`… events ${ev.from_seq}–${ev.to_seq} are no longer in the log`);
        break;
      case 'error':
        terminal.note(`${ev.code}: ${ev.error}`, 'note stderr');
        break;
      case 'done': {
        const d = describeDone(ev);
        status.show(d.text, d.ok ? 'ok' : 'failed');
        break;
      }
      default:
        assertNever(ev, 'event');
    }
  }

  private setRunning(running: boolean): void {
    document.body.dataset['run'] = running ? 'running' : 'idle';
    this.d.runButton.disabled = running;
    this.d.cancelButton.disabled = !running;
  }
}
