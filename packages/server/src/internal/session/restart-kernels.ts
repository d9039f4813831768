/** Restarting a session's kernels: shared by `POST /api/sessions/{id}/restart` and the MCP `restart` tool. */
import type { KernelLanguage } from '@sluice/sandbox';
import type { Session } from './session.js';

/** Stops every kernel of the session (a cell running now ends as cancelled, with kernel_restarted); returns their languages. */
export async function restartKernels(session: Session): Promise<KernelLanguage[]> {
  // Restarting is activity (it is a command to the session), unlike looking at it.
  session.touch();
  const running = session.current;
  if (running?.mode === 'kernel') running.stop('cancelled', 0);
  const stopped = session.liveKernels.map((k) => k.language);
  await session.stopKernels();
  return stopped;
}
