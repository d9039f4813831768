import type { FastifyReply } from 'fastify';

/** Waits for `finished` (an execution's `done`, an agent run's `end`); false if the client went away first. */
export function untilFinishedOrClosed(finished: Promise<void>, reply: FastifyReply): Promise<boolean> {
  return new Promise((resolve) => {
    const res = reply.raw;
    const onClose = (): void => {
      if (!res.writableEnded) resolve(false);
    };
    res.once('close', onClose);
    void finished.then(() => {
      res.off('close', onClose);
      resolve(true);
    });
  });
}
