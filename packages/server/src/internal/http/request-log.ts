/**
 * One JSON log line per request (docs/operations.md), written when its response closes, so a
 * stream is logged once, when it ends, with how long it lasted. Fastify's own two lines per
 * request are turned off (`disableRequestLogging`); this one carries the request id (`reqId`,
 * from the request's logger), never a header: the key in `Authorization` cannot reach the log.
 */
import type { FastifyInstance } from 'fastify';

/** pino paths censored wherever a request's headers are logged anyway (an error's context). */
export const REDACTED_LOG_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["sec-websocket-protocol"]', 'headers.authorization'];

export function requestLog(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    const started = performance.now();
    const res = reply.raw;
    res.once('close', () => {
      req.log.info(
        {
          method: req.method,
          // The path only: a query string is the client's to keep out of logs.
          url: req.url.split('?')[0],
          route: req.routeOptions.url ?? null,
          status: res.statusCode,
          // False when the client went away (or the server cut it) before the answer's end.
          complete: res.writableFinished,
          duration_ms: Math.round((performance.now() - started) * 10) / 10,
        },
        'request',
      );
    });
  });
}
