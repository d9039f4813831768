/**
 * @sluice/sdk: the TypeScript client of Sluice (work in progress: the client lands next).
 */
export type { ExecutionEvent } from '@sluice/protocol';
