#!/usr/bin/env node
/** The `sluice` command. */
import { Command } from 'commander';
import { serveCommand } from './commands/serve.js';
import { runCommand } from './commands/run.js';

const program = new Command()
  .name('sluice')
  .description('Run untrusted code in sandboxes and stream its output live.')
  .showHelpAfterError();

serveCommand(program);
runCommand(program);

await program.parseAsync(process.argv);
