/**
 * How one event looks without --json: output to its own stream, a `result`'s text on stdout,
 * progress on the bar, and everything the program did not print itself as a `sluice:` note on
 * stderr.
 */
import { assertNever, type DoneEvent, type ExecutionEvent } from '@sluice/protocol';
import type { Terminal } from './terminal.js';

/** Writes `ev` for a person reading the terminal (or a script reading the program's output). */
export async function renderEvent(ev: ExecutionEvent, term: Terminal): Promise<void> {
  switch (ev.type) {
    case 'start':
      return;
    case 'stdout':
      return term.stdout(ev.content);
    case 'stderr':
      return term.stderr(ev.content);
    case 'progress':
      term.progress(ev);
      return;
    case 'result':
      return renderResult(ev.data, term);
    case 'truncated':
      return term.note(`${ev.dropped_bytes} bytes of ${ev.stream} were dropped from the middle (output limit: the head and the tail are kept)`);
    case 'gap':
      return term.note(`events ${ev.from_seq}–${ev.to_seq} are no longer held by the server and were skipped`);
    case 'error':
      return term.note(`${ev.code}: ${ev.error}`);
    case 'done':
      term.clearProgress();
      if (ev.reason !== 'exited') await term.note(describeDone(ev));
      return;
    default:
      return assertNever(ev, 'event');
  }
}

/**
 * A rich value: its `text/plain` on stdout (a REPL's echo of a trailing expression), else its
 * `application/json`; the MIME types a terminal cannot show are named on stderr.
 */
async function renderResult(data: Record<string, unknown>, term: Terminal): Promise<void> {
  const plain = data['text/plain'];
  let shown = true;
  if (typeof plain === 'string') await term.stdout(plain.endsWith('\n') ? plain : `${plain}\n`);
  else if ('application/json' in data) await term.stdout(`${JSON.stringify(data['application/json'])}\n`);
  else shown = false;
  const others = Object.keys(data).filter((mime) => mime !== 'text/plain' && mime !== 'application/json');
  if (others.length > 0) await term.note(`result ${shown ? 'also ' : ''}in ${others.join(', ')}: not shown here; --json prints it`);
}

/** How an execution that did not simply exit ended, for a note. */
export function describeDone(done: DoneEvent): string {
  switch (done.reason) {
    case 'exited':
      return `exited with status ${done.exit_code ?? 'unknown'}`;
    case 'signaled':
      return `killed by ${done.signal ?? 'a signal'}`;
    case 'timeout':
      return `timed out after ${done.duration}`;
    case 'cancelled':
      return `cancelled after ${done.duration}`;
    case 'memory_limit':
      return 'killed: it went over the memory limit';
    case 'output_limit':
      return 'killed: it wrote more than the output kill limit';
    case 'error':
      return 'the execution could not run';
    case 'sandbox_lost':
      return 'lost: the worker running it died (its sandbox is gone)';
    default:
      return assertNever(done.reason, 'done.reason');
  }
}
