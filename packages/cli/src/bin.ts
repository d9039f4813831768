#!/usr/bin/env node
/**
 * The `sluice` command: `serve` starts a server; `run`, `exec`, `sessions`, `files` and `agent`
 * are a client of a running one, `mcp` a stdio MCP bridge to one (docs/cli.md, docs/mcp.md).
 */
import { Command, CommanderError } from 'commander';
import { serveCommand } from './commands/serve.js';
import { runCommand } from './commands/run.js';
import { execCommand } from './commands/exec.js';
import { sessionsCommand } from './commands/sessions.js';
import { filesCommand } from './commands/files.js';
import { agentCommand } from './commands/agent.js';
import { mcpCommand } from './commands/mcp.js';
import { ExitCode } from './internal/exit-codes.js';
import { ignoreOutputErrors } from './internal/exit.js';

ignoreOutputErrors();

const program = new Command()
  .name('sluice')
  .description('Run untrusted code in sandboxes and stream its output live.')
  .showHelpAfterError('(sluice --help, or sluice COMMAND --help, lists the options)')
  // Usage errors exit 2, as most Unix tools do (commander's own default is 1, which a program may return too).
  .exitOverride();

serveCommand(program);
runCommand(program);
execCommand(program);
sessionsCommand(program);
filesCommand(program);
agentCommand(program);
mcpCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err: unknown) {
  if (!(err instanceof CommanderError)) throw err;
  // Help and --version exit 0; everything else commander rejects is a usage error (already printed).
  process.exitCode = err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
}
