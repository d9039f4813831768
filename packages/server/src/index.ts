/** @sluice/server: the Sluice HTTP server. */
export { createSluiceServer, type SluiceServer } from './app.js';
export { defaultConfig, loadConfig, workerURL, CONFIG_ENV_VARS, SERVER_ROLES, type ServerConfig, type ServerRole } from './config.js';
export type { APIKey } from './internal/auth/api-keys.js';
