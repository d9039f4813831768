import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBwrapOptions, serializeBwrapArgs, type BwrapSpec } from './bwrap-options.js';

const spec: BwrapSpec = {
  workspace: '/data/ws/abc',
  reporterFile: '/data/etc/exec.pl',
  env: { PATH: '/usr/bin', A: 'x y' },
  network: false,
  tmpBytes: 1024,
  codeFD: 5,
  codePath: '/run/sluice/main.py',
  statusFD: 4,
  seccompFD: 7,
};

test('the options demand a user namespace, forbid nested ones and drop every capability', () => {
  const o = buildBwrapOptions(spec);
  for (const flag of ['--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session', '--clearenv']) {
    assert.ok(o.includes(flag), flag);
  }
  assert.equal(o[o.indexOf('--cap-drop') + 1], 'ALL');
  assert.ok(!o.includes('--share-net'));
});

test('/ is remounted read-only after every other mount', () => {
  const o = buildBwrapOptions(spec);
  const mounts = ['--bind', '--ro-bind', '--ro-bind-try', '--tmpfs', '--proc', '--dev', '--symlink', '--file'];
  const lastMount = Math.max(...o.map((x, i) => (mounts.includes(x) ? i : -1)));
  const remount = o.indexOf('--remount-ro');
  assert.equal(o[remount + 1], '/');
  assert.ok(remount > lastMount);
});

test('each --size precedes the tmpfs it sizes', () => {
  const o = buildBwrapOptions(spec);
  const tmp = o.indexOf('/tmp');
  assert.deepEqual(o.slice(tmp - 3, tmp + 1), ['--size', '1024', '--tmpfs', '/tmp']);
});

test('the environment is passed with --setenv only, and network only on request', () => {
  const o = buildBwrapOptions(spec);
  const i = o.indexOf('A');
  assert.deepEqual(o.slice(i - 1, i + 2), ['--setenv', 'A', 'x y']);
  const net = buildBwrapOptions({ ...spec, network: true });
  assert.ok(net.includes('--share-net'));
  assert.ok(net.includes('/etc/resolv.conf'));
});

test('--args payload is NUL-separated and NUL-terminated, and refuses embedded NUL', () => {
  assert.equal(serializeBwrapArgs(['--a', 'b c']), '--a\0b c\0');
  assert.equal(serializeBwrapArgs([]), '');
  assert.throws(() => serializeBwrapArgs(['a\0b']), TypeError);
});

test('the seccomp filter is loaded from its fd, after the mounts', () => {
  const o = buildBwrapOptions(spec);
  const at = o.indexOf('--seccomp');
  assert.equal(o[at + 1], '7');
  assert.ok(at > o.indexOf('--remount-ro'));
  assert.equal(o.filter((x) => x === '--seccomp' || x === '--add-seccomp-fd').length, 1);
});
