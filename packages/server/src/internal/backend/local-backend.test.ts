import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../config.js';
import { ApiError } from '../api-error.js';
import { ServerMetrics } from '../metrics/server-metrics.js';
import type { SessionManager } from '../session/session-manager.js';
import { Session, type SessionSettings } from '../session/session.js';
import { LocalBackend } from './local-backend.js';

const SETTINGS: SessionSettings = {
  language: 'python',
  env: {},
  timeoutSec: undefined,
  idleTTLSec: 60,
  network: false,
  limits: { output_bytes: 1, processes: 1, open_files: 1, file_size: 1, memory_bytes: 1, cpu: 1, cpu_time: 1, disk_bytes: 1, inodes: 1 },
};

/** The manager's lookup over a map: incarnation() needs nothing else of it. */
function lookup(sessions: Map<string, Session>): SessionManager {
  const get = (_owner: string | null, id: string): Session => {
    const s = sessions.get(id);
    if (!s) throw new ApiError('NOT_FOUND', `no session with id ${JSON.stringify(id)}`);
    return s;
  };
  return { get } as unknown as SessionManager;
}

function session(id: string): Session {
  // Never run: no sandbox is started by constructing one.
  return new Session(id, null, SETTINGS, '/nonexistent', undefined, () => {
    throw new Error('not used');
  }, 1);
}

test('a session deleted and created again under its id is another incarnation; a missing one has none', async () => {
  const sessions = new Map<string, Session>([['s', session('s')], ['t', session('t')]]);
  const noop = (): void => {};
  const metrics = new ServerMetrics({ sessions: () => 0, kernels: () => 0, agentRuns: () => ({ completed: 0, max_turns: 0, length: 0, cancelled: 0, error: 0 }), llmTokens: () => ({ prompt: 0, completion: 0 }), drainStreamBytes: () => ({}) });
  const backend = new LocalBackend({ sessions: lookup(sessions), config: defaultConfig(), resolveLanguage: () => 'python', metrics, log: { info: noop } });

  const first = await backend.incarnation(null, 's');
  assert.notEqual(first, null);
  assert.equal(await backend.incarnation(null, 's'), first, 'the same session keeps its incarnation');
  assert.notEqual(await backend.incarnation(null, 't'), first, 'another session has its own');

  sessions.set('s', session('s'));
  const second = await backend.incarnation(null, 's');
  assert.notEqual(second, null);
  assert.notEqual(second, first, 'a replacement under the same id is a new incarnation');

  sessions.delete('s');
  assert.equal(await backend.incarnation(null, 's'), null);
});
