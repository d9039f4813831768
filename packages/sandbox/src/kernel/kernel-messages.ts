/**
 * The kernel protocol (packages/sandbox/runtime/kernels), on the kernel's control socket (fd 4
 * inside, moved out of the cell's way by the kernel at start). The user's events channel (fd 3)
 * never carries these: a `sluice.*` line there is just a malformed event.
 */
import type { OutputStream } from '@sluice/protocol';

/** Server → kernel, one JSON line each. */
export type KernelRequest =
  | { type: 'execute'; nonce: string; code: string; stdin?: string; stdin_eof?: true; env?: Record<string, string> }
  | { type: 'stdin'; data: string }
  | { type: 'stdin_eof' };

/** Kernel → server, one JSON line each. */
export type KernelMessage =
  | { type: 'sluice.kernel_ready'; language: string; version: string }
  /**
   * The cell is over: its output and events were all written (and its events placed) before
   * this line. `exiting`: the kernel goes away after it (process.exit(), or `broken` stdio).
   * A kernel's cell ends with its fence (cellEndOf); the JavaScript kernel sends this only
   * when a cell closed or replaced fd 3, so that its fence could not go there.
   */
  | {
      type: 'sluice.cell_done';
      nonce: string;
      status: 'ok' | 'error' | 'interrupted';
      exit_code: number;
      exiting: boolean;
      broken: OutputStream | null;
    }
  /** Output that a thread or callback of an ended cell wrote: it belongs to no running cell. */
  | { type: 'sluice.background'; stream: OutputStream; text: string };

export type CellDone = Extract<KernelMessage, { type: 'sluice.cell_done' }>;

/**
 * A cell's end carried by its fence on the events socket (`{"type":"sync","sync":true,
 * "fence":nonce,"done":{status, exit_code, exiting?, broken?}}`): placed, it is that cell's
 * `cell_done` (everything the cell wrote before it is in). A string says what is wrong.
 */
export function cellEndOf(nonce: string, done: unknown): CellDone | string {
  if (typeof done !== 'object' || done === null || Array.isArray(done)) return 'fence.done: expected an object';
  const m = parseKernelMessage({ ...done, type: 'sluice.cell_done', nonce });
  if (typeof m === 'string') return m;
  return m.type === 'sluice.cell_done' ? m : 'fence.done: not a cell end';
}

/** Validates one decoded control line; a string says what is wrong with it. */
export function parseKernelMessage(v: unknown): KernelMessage | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'expected a JSON object';
  const o = v as Record<string, unknown>;
  switch (o['type']) {
    case 'sluice.kernel_ready':
      return { type: 'sluice.kernel_ready', language: String(o['language'] ?? ''), version: String(o['version'] ?? '') };
    case 'sluice.cell_done': {
      const { nonce, status, exit_code: code, broken } = o;
      if (typeof nonce !== 'string') return 'sluice.cell_done.nonce: expected a string';
      if (status !== 'ok' && status !== 'error' && status !== 'interrupted') return 'sluice.cell_done.status: expected ok, error or interrupted';
      return {
        type: 'sluice.cell_done',
        nonce,
        status,
        exit_code: typeof code === 'number' && Number.isInteger(code) ? code : status === 'ok' ? 0 : 1,
        exiting: o['exiting'] === true,
        broken: broken === 'stdout' || broken === 'stderr' ? broken : null,
      };
    }
    case 'sluice.background': {
      const { stream, text } = o;
      if (stream !== 'stdout' && stream !== 'stderr') return 'sluice.background.stream: expected stdout or stderr';
      if (typeof text !== 'string') return 'sluice.background.text: expected a string';
      return { type: 'sluice.background', stream, text };
    }
    default:
      return `unknown kernel message ${JSON.stringify(o['type'])}`;
  }
}
