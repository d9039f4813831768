/**
 * `GET /metrics`: Prometheus text (docs/operations.md). Behind the API keys like every route but
 * `/healthz`. Also where stream bytes are watched: every response and WebSocket upgrade is
 * tracked from outside its writer (metrics/wire-bytes.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import type { WireBytes } from '../metrics/wire-bytes.js';

/** Routes whose JSON answer is a run's buffered result (the `json` transport). */
const BUFFERED_RUN_ROUTES = new Set(['/api/sessions/:id/run', '/api/sessions/:id/agent']);

export function metricsRoutes(app: FastifyInstance, metrics: ServerMetrics, wire: WireBytes): void {
  app.addHook('onRequest', async (req, reply) => {
    wire.trackResponse(reply.raw, req.method === 'POST' && BUFFERED_RUN_ROUTES.has(req.routeOptions.url ?? ''));
  });
  // Beside the WebSocket route's own listener: it sees the same upgrades and only reads the socket.
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    if ((req.headers.upgrade ?? '').toLowerCase() === 'websocket') wire.trackWebSocket(socket);
  });

  app.get('/metrics', async (_req, reply) => {
    const { contentType, text } = await metrics.render();
    return reply.header('Content-Type', contentType).header('Cache-Control', 'no-store').send(text);
  });
}
