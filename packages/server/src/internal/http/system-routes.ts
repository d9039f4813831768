/** `GET /healthz` (open to all), `GET /api/languages`, `GET /` (the playground for browsers, else the endpoint list) and the playground's files. */
import type { FastifyInstance } from 'fastify';
import { LANGUAGES } from '@sluice/protocol';
import { ApiError } from '../api-error.js';
import type { ServerContext } from './context.js';
import { languageView } from './views.js';
import { sendPlayground, webRoutes } from './web-routes.js';
import { wantsHTML } from './wants-html.js';

export function systemRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/healthz', async () => {
    const problem = ctx.health();
    if (problem !== null) throw new ApiError('SANDBOX_UNAVAILABLE', problem, { retryAfter: 5 });
    let cluster = {};
    if (ctx.cluster) {
      const redis = await ctx.cluster.redisProblem();
      if (redis !== null) throw new ApiError('SANDBOX_UNAVAILABLE', `Redis (SLUICE_REDIS_URL) does not answer: ${redis}`, { retryAfter: 5 });
      cluster = { role: ctx.cluster.role, redis: 'ok' };
    }
    // Open to anyone: with API keys it says nothing about the host or the tenants' sessions.
    if (ctx.authEnabled) return { status: 'ok', ...cluster };
    // Whether memory, pids and CPU limits are enforced (cgroups) or only rlimits apply.
    const cg = await ctx.backend.cgroups();
    const cgroups = cg.version === 'none' ? { cgroups: 'none', cgroups_reason: cg.reason } : { cgroups: cg.version };
    return { status: 'ok', ...cluster, sessions: await ctx.backend.sessionCount(), ...cgroups };
  });

  // Every language of the contract, installed or not (then `reason` says why and what to install).
  app.get('/api/languages', async () => ({
    languages: LANGUAGES.flatMap((language) => {
      const info = ctx.languages.get(language);
      if (!info) return [];
      return [languageView(language, info)];
    }),
  }));

  webRoutes(app);
  app.get('/', async (req, reply) => {
    // One URL, two representations: a cache must key them by Accept.
    void reply.header('Vary', 'Accept');
    if (wantsHTML(req.headers.accept)) return sendPlayground(reply, req.headers['if-none-match']);
    return {
      name: 'sluice',
      description: 'Runs untrusted code in sandboxes and streams its output live.',
      // Whether agent runs can work here (an LLM endpoint is configured): the playground's agent tab.
      agent: ctx.config.llmBaseURL !== '',
      endpoints: [
        'POST /api/sessions',
        'GET /api/sessions',
        'GET|DELETE /api/sessions/{id}',
        'POST /api/sessions/{id}/restart',
        'POST /api/sessions/{id}/run',
        'POST /api/sessions/{id}/stream',
        'GET /api/sessions/{id}/ws (WebSocket)',
        'GET /api/sessions/{id}/files?dir=',
        'GET|PUT|DELETE /api/sessions/{id}/files/{path}',
        'GET /api/executions/{id}',
        'GET /api/executions/{id}/events',
        'POST /api/executions/{id}/stdin',
        'POST /api/executions/{id}/cancel',
        'POST /api/sessions/{id}/agent',
        'POST /api/sessions/{id}/ag-ui',
        'GET /api/agent-runs/{id}',
        'GET /api/agent-runs/{id}/events',
        'POST /api/agent-runs/{id}/cancel',
        'POST|GET|DELETE /mcp (Model Context Protocol, Streamable HTTP)',
        'GET /api/languages',
        'GET /healthz',
        'GET /metrics',
        'GET /openapi.json (every endpoint, its parameters, bodies and answers)',
        'GET / (Accept: text/html: the playground), GET /ui/{file} (its files)',
      ],
    };
  });
}
