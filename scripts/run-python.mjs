// The Python SDK's checks, run by `npm test` (after the build: its tests start the CLI's server):
// a throwaway venv that sees Debian's packages (--system-site-packages: httpx, hatchling, mypy,
// pytest, pytest-asyncio; .ci/run installs them), the package installed into it offline, then
// the sync client's generation check, mypy --strict and pytest against real sandboxes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const python = join(root, 'python');
const systemPython = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const work = mkdtempSync(join(tmpdir(), 'sluice-python-'));
const venv = join(work, 'venv');
const venvPython = join(venv, 'bin', 'python');
// No bytecode or caches in the source tree; pip never reaches for an index.
const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PIP_NO_INDEX: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };

function step(name, cmd, args, cwd = root) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd, env, stdio: 'inherit' });
  const took = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    console.error(`python: ${name} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}) after ${took} s`);
    cleanup();
    process.exit(1);
  }
  console.log(`python: ${name} ok (${took} s)`);
}

function cleanup() {
  rmSync(work, { recursive: true, force: true });
}

try {
  step('sync client up to date', systemPython, [join(python, 'scripts', 'gen_sync.py'), '--check']);
  step('venv', systemPython, ['-m', 'venv', '--system-site-packages', venv]);
  step('install (offline)', venvPython, ['-m', 'pip', 'install', '--quiet', '--no-build-isolation', '--no-index', python]);
  const cache = ['--cache-dir', join(work, 'mypy-cache')];
  step('mypy --strict (package, as Python 3.9)', venvPython, ['-m', 'mypy', ...cache, '--python-version', '3.9', 'src'], python);
  step('mypy --strict (tests, examples, scripts)', venvPython, ['-m', 'mypy', ...cache, 'tests', 'examples', 'scripts'], python);
  step('pytest', venvPython, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...process.argv.slice(2)], python);
} finally {
  cleanup();
}
