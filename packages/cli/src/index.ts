/** @sluice/cli: the `sluice` command (see bin.ts). Exposes its exit statuses and the language guess for reuse. */
export { ExitCode, exitCodeForDone, exitCodeForError } from './internal/exit-codes.js';
export { languageForFile } from './internal/language-for-file.js';
