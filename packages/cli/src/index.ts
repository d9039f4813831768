/** @sluice/cli: the `sluice` command (see bin.ts). Exposes the language guess for reuse. */
export { languageForFile } from './commands/run.js';
