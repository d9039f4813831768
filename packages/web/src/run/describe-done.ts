/** The end of an execution in words, as `done` says it: why, the exit code, the duration. */
import type { DoneEvent } from '@sluice/sdk';
import { assertNever } from '../assert-never.js';
import { formatDuration } from '../dom/format.js';

/** The status line for `done`, and whether it is a success (exit code 0). */
export function describeDone(ev: DoneEvent): { text: string; ok: boolean } {
  const code = ev.exit_code === null ? 'no exit code' : `exit code ${ev.exit_code}`;
  let why: string;
  switch (ev.reason) {
    case 'exited':
      why = ev.exit_code === 0 ? 'Finished' : 'Failed';
      break;
    case 'signaled':
      why = `Killed by ${ev.signal ?? 'a signal'}`;
      break;
    case 'timeout':
      why = 'Stopped: timed out';
      break;
    case 'cancelled':
      why = 'Cancelled';
      break;
    case 'memory_limit':
      why = 'Stopped: over the memory limit';
      break;
    case 'output_limit':
      why = 'Stopped: over the output limit';
      break;
    case 'error':
      why = 'Could not run';
      break;
    case 'sandbox_lost':
      why = 'Lost: the worker running it died';
      break;
    default:
      return assertNever(ev.reason, 'done reason');
  }
  const restarted = ev.kernel_restarted === true ? ' · the kernel was restarted (its state is lost)' : '';
  return { text: `${why} · ${code} · reason ${ev.reason} · ${formatDuration(ev.duration_ms)}${restarted}`, ok: ev.reason === 'exited' && ev.exit_code === 0 };
}
