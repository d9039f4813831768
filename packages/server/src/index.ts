/** @sluice/server: the Sluice HTTP server. */
export { createSluiceServer, type SluiceServer } from './app.js';
export { defaultConfig, loadConfig, CONFIG_ENV_VARS, type ServerConfig } from './config.js';
export type { APIKey } from './internal/auth/api-keys.js';
