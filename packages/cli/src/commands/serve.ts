/**
 * `sluice serve`: starts the server with embedded defaults, installing bubblewrap if needed.
 * SIGTERM or SIGINT drains it (no new runs; running ones get SLUICE_DRAIN_GRACE seconds, then
 * are cancelled; workspaces removed; exit 0); a second signal cuts the grace short, a third
 * exits at once.
 */
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import type { ServerConfig } from '@sluice/server';

interface ServeOptions {
  host?: string;
  port?: string;
  dataDir?: string;
  install: boolean;
  insecureNoAuth?: boolean;
  role?: string;
}

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('start the Sluice server (HOST, PORT, SLUICE_DATA_DIR and SLUICE_* variables apply)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1, or HOST)')
    .option('--port <port>', 'port to listen on (default 8080, or PORT; 0 picks a free one)')
    .option('--data-dir <dir>', 'where workspaces live (default $TMPDIR/sluice, or SLUICE_DATA_DIR)')
    .option('--no-install', 'do not install bubblewrap with apt-get when it is missing')
    .option('--role <role>', 'all (one process), api (answers requests, runs no code) or worker (runs sandboxes); api and worker need SLUICE_REDIS_URL (default all, or SLUICE_ROLE)')
    .option('--insecure-no-auth', 'listen on a non-loopback address without API keys (or SLUICE_INSECURE_NO_AUTH=1)')
    .action(async (opts: ServeOptions) => {
      // Loaded here, not at the top, so that the client commands do not pay for the server's start-up.
      const { createSluiceServer, loadConfig, SERVER_ROLES } = await import('@sluice/server');
      const overrides: Partial<ServerConfig> = {};
      if (opts.host !== undefined) overrides.host = opts.host;
      if (opts.port !== undefined) overrides.port = Number(opts.port);
      if (opts.dataDir !== undefined) overrides.dataDir = opts.dataDir;
      if (opts.insecureNoAuth === true) overrides.insecureNoAuth = true;
      if (opts.role !== undefined) {
        const role = SERVER_ROLES.find((r) => r === opts.role);
        if (!role) fail(`sluice: --role: expected ${SERVER_ROLES.join(', ')}, got ${JSON.stringify(opts.role)}`);
        overrides.role = role;
      }
      let config: ServerConfig;
      try {
        config = loadConfig(process.env, overrides);
      } catch (err) {
        fail(`sluice: ${(err as Error).message}`);
      }
      // An API node of a scale-out deployment runs no sandboxes (docs/scale-out.md).
      if (!(config.redisURL !== '' && config.role === 'api')) await ensureBubblewrap(opts.install);
      const server = await createSluiceServer(config).catch((err: Error) => fail(`sluice: ${err.message}`));
      const url = await server.listen();
      const keys = config.apiKeys.length;
      const role = config.redisURL !== '' ? ` as ${config.role} (Redis ${new URL(config.redisURL).host})` : '';
      process.stderr.write(`sluice: listening on ${url}${role}${keys > 0 ? ` (${keys} API key${keys === 1 ? '' : 's'})` : ''}\n`);
      let signals = 0;
      const cutShort = new AbortController();
      const stop = (signal: string): void => {
        signals++;
        if (signals === 1) {
          process.stderr.write(`sluice: ${signal}: draining; running executions get ${config.drainGraceSec} s to finish (signal again to cancel them now)\n`);
          server.drain(config.drainGraceSec * 1000, cutShort.signal).then(
            () => process.exit(0),
            (err: Error) => fail(`sluice: stopping failed: ${err.message}`),
          );
        } else if (signals === 2) {
          process.stderr.write(`sluice: ${signal}: cancelling every execution now\n`);
          cutShort.abort();
        } else {
          process.exit(1);
        }
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}

async function ensureBubblewrap(install: boolean): Promise<void> {
  const { findBubblewrap, INSTALL_BUBBLEWRAP, isRoot } = await import('@sluice/sandbox');
  if (await findBubblewrap()) return;
  if (!isRoot() || !install) {
    fail(`sluice: bubblewrap (bwrap) is not installed. Install it with:\n\n  sudo ${INSTALL_BUBBLEWRAP}\n`);
  }
  process.stderr.write(`sluice: bubblewrap is missing; running: ${INSTALL_BUBBLEWRAP}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', 'bubblewrap'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', 'bubblewrap'], { stdio: 'inherit', env });
  }
  if (r.status !== 0 || !(await findBubblewrap())) fail(`sluice: could not install bubblewrap; run: ${INSTALL_BUBBLEWRAP}`);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
