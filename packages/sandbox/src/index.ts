/** @sluice/sandbox: runs code in bubblewrap sandboxes. Knows nothing of HTTP. */
export * from './bwrap-options.js';
export * from './launch.js';
export * from './preflight.js';
export * from './runtimes.js';
export * from './signal-namespace.js';
export * from './uid-pool.js';
export * from './workspace.js';
