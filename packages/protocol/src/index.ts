/**
 * @sluice/protocol: the wire contract shared by the server, the SDK and the CLI.
 * Zero runtime dependencies and web-standard APIs only, so it runs in Node and browsers.
 */
export * from './assert-never.js';
export * from './events.js';
export * from './agent-events.js';
export * from './agent-fold.js';
export * from './parse-agent-event.js';
export * from './errors.js';
export * from './requests.js';
export * from './mcp-tools.js';
export * from './json-schema.js';
export * from './fold.js';
export * from './sse-encoder.js';
export * from './sse-decoder.js';
export * from './ndjson.js';
export * from './parse-event.js';
export * from './ws-close-codes.js';
export * from './ws-messages.js';
export * from './views.js';
