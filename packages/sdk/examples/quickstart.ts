import type { ExecutionEvent } from '@sluice/sdk';

const events: ExecutionEvent[] = [];
process.stdout.write(`${events.length}\n`);
