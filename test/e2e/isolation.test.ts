/**
 * Sandbox isolation end to end: code run through the API (real server as root, real bubblewrap)
 * must not see the host's environment, network, files, processes or privileges, and must stay
 * inside its rlimits. Every check runs python or bash inside the sandbox and asserts on what it
 * prints; a few also look from the host (`ps`, /proc) at the sandbox's processes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type TestServer } from './helpers/server.js';
import { doneOf, postJSON, readSSE, runStream, text, type RunOutcome } from './helpers/client.js';
import { assertNothingLeft, hostProcesses, uidsOf, waitFor, type HostProc } from './helpers/host.js';

const SECRET_NAME = 'SLUICE_FAKE_SECRET';
const SECRET_VALUE = 'xyz';
/** Kill grace of this file's server, ms. */
const GRACE_MS = 500;
/**
 * Host uids of this server's sessions: a random range of its own, so that other servers on the
 * machine (their sessions share the default pool's uids) never meet ours in `ps` or RLIMIT_NPROC.
 */
const UID_BASE = 3_000_000 + randomInt(0, 50_000) * 64;
const UID_COUNT = 64;

let server: TestServer;
before(async () => {
  server = await startServer({
    [SECRET_NAME]: SECRET_VALUE,
    SLUICE_KILL_GRACE_MS: String(GRACE_MS),
    SLUICE_UID_BASE: String(UID_BASE),
    SLUICE_UID_COUNT: String(UID_COUNT),
  });
});
after(async () => {
  await server?.stop();
});


/**
 * Runs code through `POST /stream` on this file's server, in process mode: what one execution
 * can see and keep (a kernel's own process is checked in kernels.test.ts).
 */
const run = (session: string, body: Record<string, unknown>): Promise<RunOutcome> => runStream(server.url, session, { mode: 'process', ...body });

/** Runs python that prints one JSON object as its last stdout line; returns it parsed. */
async function probe(session: string, code: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const r = await run(session, { language: 'python', code, ...extra });
  assert.equal(r.done.reason, 'exited', `probe failed: ${r.stderr}`);
  assert.equal(r.done.exit_code, 0, `probe failed: ${r.stderr}`);
  const lines = r.stdout.trimEnd().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as Record<string, unknown>;
}


async function createSession(body: Record<string, unknown>): Promise<void> {
  const res = await postJSON(`${server.url}/api/sessions`, body);
  assert.equal(res.status, 201, `create session answered ${res.status}: ${await res.text()}`);
}

async function deleteSession(id: string): Promise<void> {
  const res = await fetch(`${server.url}/api/sessions/${id}`, { method: 'DELETE' });
  assert.ok(res.status === 200 || res.status === 204, `delete session answered ${res.status}`);
  await res.body?.cancel();
}

test('no host environment: only allow-listed variables, empty /proc/1/environ, no host paths in /proc/1/cmdline', async () => {
  // The test is only meaningful if the server itself has the secret in its environment.
  const serverEnviron = await readFile(`/proc/${server.proc.pid}/environ`, 'utf8');
  assert.ok(serverEnviron.split('\0').includes(`${SECRET_NAME}=${SECRET_VALUE}`), 'the server runs with the fake secret');

  const r = await probe(
    'env-py',
    [
      'import os, json',
      'def rd(p):',
      '    with open(p, "rb") as f: return f.read().decode("latin-1")',
      'print(json.dumps({"env": dict(os.environ), "pid1_environ": rd("/proc/1/environ"),',
      '                  "self_environ": rd("/proc/self/environ"), "pid1_cmdline": rd("/proc/1/cmdline")}))',
    ].join('\n'),
  );
  const env = r['env'] as Record<string, string>;
  const allowed = new Set([
    'PWD', 'PATH', 'HOME', 'TMPDIR', 'XDG_CACHE_HOME', 'LANG', 'LC_ALL', 'USER', 'TERM',
    'PYTHONUNBUFFERED', 'PYTHONDONTWRITEBYTECODE', 'PYTHONPATH', 'MPLBACKEND', 'MPLCONFIGDIR',
    'SLUICE_EVENTS_FD', 'SLUICE_CONTROL_FD',
  ]);
  for (const name of Object.keys(env)) assert.ok(allowed.has(name), `unexpected variable in the sandbox: ${name}=${env[name]}`);
  assert.equal(env[SECRET_NAME], undefined);
  assert.equal(env['PATH'], '/usr/local/bin:/usr/bin:/bin:/opt/sluice/bin');
  assert.equal(env['HOME'], '/workspace');
  if (env['PWD'] !== undefined) assert.equal(env['PWD'], '/workspace');
  const selfEnviron = String(r['self_environ']);
  assert.ok(!selfEnviron.includes(SECRET_NAME) && !selfEnviron.includes(SECRET_VALUE), `/proc/self/environ: ${JSON.stringify(selfEnviron)}`);
  assert.equal(r['pid1_environ'], '', '/proc/1/environ (bwrap\'s own environment) must be empty');
  const cmdline = String(r['pid1_cmdline']).split('\0').join(' ');
  assert.ok(!cmdline.includes(server.dataDir), `/proc/1/cmdline shows the data dir: ${cmdline}`);
  assert.ok(!/workspaces|sluice-e2e|\/tmp\//.test(cmdline), `/proc/1/cmdline shows host paths: ${cmdline}`);
  for (const v of Object.values(env)) assert.ok(!v.includes(server.dataDir), `a variable shows the data dir: ${v}`);

  // bash sees the same: no secret anywhere in its environment or PID 1's.
  const sh = await run('env-sh', { language: 'bash', code: `env; echo "pid1=$(wc -c < /proc/1/environ)"` });
  assert.equal(sh.done.exit_code, 0, sh.stderr);
  assert.ok(!sh.stdout.includes(SECRET_NAME) && !sh.stdout.includes(`=${SECRET_VALUE}`), sh.stdout);
  assert.match(sh.stdout, /^pid1=0$/m);
});

test('no network: IP sockets are refused (seccomp), DNS fails, only `lo` exists and the host\'s listening port is not there', async () => {
  const port = Number(new URL(server.url).port);
  // From the host, the port is really open (so its absence inside means isolation, not a dead server).
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();

  const r = await probe(
    'net',
    [
      'import socket, errno, json',
      'def tcp(host, port):',
      '    try:',
      '        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      '    s.settimeout(3)',
      '    try:',
      '        s.connect((host, port))',
      '        return "connected"',
      '    except socket.timeout:',
      '        return "timeout"',
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      '    finally:',
      '        s.close()',
      'def udp(host, port):',
      '    try:',
      '        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      '    try:',
      '        s.sendto(b"x", (host, port))',
      '        return "sent"',
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      '    finally:',
      '        s.close()',
      'def dns(name):',
      '    try:',
      '        return "resolved " + str(socket.getaddrinfo(name, 80)[0][4])',
      '    except OSError:',
      '        return "failed"',
      '# /proc/net shows this network namespace without opening a socket.',
      'ifaces = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]',
      'listening = []',
      'for f in ("/proc/net/tcp", "/proc/net/tcp6"):',
      '    for l in open(f).read().splitlines()[1:]:',
      '        local, state = l.split()[1], l.split()[3]',
      '        if state == "0A": listening.append(int(local.rsplit(":", 1)[1], 16))',
      `print(json.dumps({"ext": tcp("1.1.1.1", 53), "ext_udp": udp("1.1.1.1", 53), "host": tcp("127.0.0.1", ${port}),`,
      '    "dns": dns("example.com"), "dns2": dns("deb.debian.org"), "ifaces": ifaces, "listening": listening}))',
    ].join('\n'),
  );
  // The seccomp filter refuses IP sockets outright in a session without network (docs/seccomp.md).
  assert.equal(r['ext'], 'EAFNOSUPPORT', 'TCP to 1.1.1.1:53');
  assert.equal(r['ext_udp'], 'EAFNOSUPPORT', 'UDP to 1.1.1.1:53');
  assert.equal(r['host'], 'EAFNOSUPPORT', `TCP to 127.0.0.1:${port} (the server, on the host)`);
  assert.equal(r['dns'], 'failed');
  assert.equal(r['dns2'], 'failed');
  // And beneath it, a network namespace of its own: only loopback, where nothing listens.
  assert.deepEqual(r['ifaces'], ['lo']);
  assert.deepEqual(r['listening'], [], `listening TCP ports inside (the server's is ${port})`);
});

test('host files are absent: /etc/shadow, /root, /home, /sys/fs/cgroup', async () => {
  const r = await probe(
    'files',
    [
      'import os, json',
      'paths = ["/etc/shadow", "/etc/gshadow", "/root", "/home", "/sys/fs/cgroup", "/sys", "/var", "/etc/sudoers", "/etc/ssh"]',
      'passwd = open("/etc/passwd").read()',
      'print(json.dumps({"present": [p for p in paths if os.path.lexists(p)], "passwd": passwd}))',
    ].join('\n'),
  );
  assert.deepEqual(r['present'], []);
  // /etc/passwd is the synthetic one, not the host's.
  const hostUsers = (await readFile('/etc/passwd', 'utf8')).split('\n').map((l) => l.split(':')[0] ?? '').filter((u) => u !== '' && u !== 'root' && u !== 'nobody');
  const sandboxUsers = String(r['passwd']).split('\n').map((l) => l.split(':')[0] ?? '');
  for (const u of hostUsers) assert.ok(!sandboxUsers.includes(u), `host user ${u} visible in the sandbox's /etc/passwd`);
});

test('identity and privileges: uid 1000, no capabilities, NoNewPrivs, no user namespaces', async () => {
  const r = await probe(
    'ident',
    [
      'import os, json, subprocess',
      'st = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)',
      'u = subprocess.run(["unshare", "-U", "true"], capture_output=True, text=True)',
      'u2 = subprocess.run(["unshare", "-Ur", "id", "-u"], capture_output=True, text=True)',
      'print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),',
      '  "CapEff": st["CapEff"].strip(), "CapPrm": st["CapPrm"].strip(), "CapInh": st["CapInh"].strip(),',
      '  "CapBnd": st["CapBnd"].strip(), "CapAmb": st["CapAmb"].strip(), "NoNewPrivs": st["NoNewPrivs"].strip(),',
      '  "unshare_rc": u.returncode, "unshare_err": u.stderr, "unshare_r_rc": u2.returncode}))',
    ].join('\n'),
  );
  assert.equal(r['uid'], 1000);
  assert.equal(r['euid'], 1000);
  assert.equal(r['gid'], 1000);
  for (const cap of ['CapEff', 'CapPrm', 'CapInh', 'CapBnd', 'CapAmb']) assert.equal(r[cap], '0000000000000000', cap);
  assert.equal(r['NoNewPrivs'], '1');
  assert.notEqual(r['unshare_rc'], 0, `unshare -U true must fail (stderr: ${String(r['unshare_err'])})`);
  assert.notEqual(r['unshare_r_rc'], 0, 'unshare -Ur must fail');
});

test('the file system is read-only outside /workspace and /tmp', async () => {
  const r = await probe(
    'writes',
    [
      'import os, json, errno',
      'def try_write(p):',
      '    try:',
      '        with open(p, "w") as f: f.write("x")',
      '        return "ok"',
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      'def try_mkdir(p):',
      '    try:',
      '        os.mkdir(p)',
      '        return "ok"',
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      'out = {p: try_write(p) for p in ["/usr/evil", "/usr/bin/evil", "/etc/evil", "/etc/passwd", "/evil", "/bin/evil", "/run/sluice/main.py", "/workspace/ok.txt", "/tmp/ok.txt"]}',
      'out["mkdir /evil"] = try_mkdir("/evil")',
      'out["mkdir /etc/evil.d"] = try_mkdir("/etc/evil.d")',
      'out["mkdir /workspace/d"] = try_mkdir("/workspace/d")',
      'print(json.dumps(out))',
    ].join('\n'),
  );
  for (const p of ['/usr/evil', '/usr/bin/evil', '/etc/evil', '/etc/passwd', '/evil', '/bin/evil', '/run/sluice/main.py', 'mkdir /evil', 'mkdir /etc/evil.d']) {
    assert.ok(r[p] === 'EROFS' || r[p] === 'EACCES', `${p}: expected EROFS or EACCES, got ${String(r[p])}`);
  }
  assert.equal(r['/workspace/ok.txt'], 'ok');
  assert.equal(r['/tmp/ok.txt'], 'ok');
  assert.equal(r['mkdir /workspace/d'], 'ok');
});

test('/tmp is private to each execution while /workspace persists across executions', async () => {
  const first = await probe(
    'tmp-ws',
    [
      'import json',
      'open("/tmp/marker", "w").write("t")',
      'open("/workspace/marker", "w").write("w")',
      'print(json.dumps({"ok": True}))',
    ].join('\n'),
  );
  assert.equal(first['ok'], true);
  const second = await probe(
    'tmp-ws',
    [
      'import os, json',
      'print(json.dumps({"tmp": os.path.exists("/tmp/marker"), "tmp_list": os.listdir("/tmp"),',
      '  "ws": open("/workspace/marker").read() if os.path.exists("/workspace/marker") else None}))',
    ].join('\n'),
  );
  assert.equal(second['tmp'], false);
  assert.deepEqual(second['tmp_list'], []);
  assert.equal(second['ws'], 'w');
  // Another session does not see this session's workspace.
  const other = await probe('tmp-ws-other', 'import os, json\nprint(json.dumps({"ws": os.path.exists("/workspace/marker")}))');
  assert.equal(other['ws'], false);
});

test('only fds 0, 1, 2 and the events pipe (3) are open in the sandboxed program', async () => {
  const r = await run('fds', { language: 'bash', code: 'ls -l /proc/self/fd/' });
  assert.equal(r.done.exit_code, 0, r.stderr);
  const fds: { fd: number; target: string }[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /\s(\d+) -> (.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) fds.push({ fd: Number(m[1]), target: m[2] });
  }
  // `ls` itself holds one fd: the /proc/<pid>/fd directory it is listing.
  const others = fds.filter((f) => !/^\/proc\/\d+\/fd$/.test(f.target));
  assert.equal(fds.length - others.length, 1, `the listing's own fd: ${r.stdout}`);
  assert.deepEqual(others.map((f) => f.fd), [0, 1, 2, 3], r.stdout);
  // Node's stdio 'pipe' is a socketpair.
  assert.match(others[3]?.target ?? '', /^(pipe|socket):/, `fd 3 is the events channel: ${r.stdout}`);

  // python sees the same (fds that vanish once the listing is closed are the listing's own).
  const p = await probe(
    'fds',
    [
      'import os, json',
      'fds = []',
      'for n in os.listdir("/proc/self/fd"):',
      '    try:',
      '        os.fstat(int(n)); fds.append(int(n))',
      '    except OSError:',
      '        pass',
      'print(json.dumps(sorted(fds)))',
    ].join('\n'),
  );
  assert.deepEqual(p, [0, 1, 2, 3]);
});

test('pid namespace: the program has a low pid and sees only its own few processes', async () => {
  const r = await run('pidns', { language: 'bash', code: 'echo "self=$$"; ps -e -o pid=,comm=' });
  assert.equal(r.done.exit_code, 0, r.stderr);
  const self = Number(/^self=(\d+)$/m.exec(r.stdout)?.[1]);
  assert.ok(self >= 1 && self <= 3, `the program's pid inside: ${self}`);
  const procs = r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  assert.ok(procs.length <= 5, `ps -e inside lists only a handful: ${JSON.stringify(procs)}`);
  // PID 1 is bwrap's init, PID 2 Sluice's status reporter (perl), then the program and its ps.
  for (const p of procs) assert.match(p, /^\d+ (bwrap|perl|bash|ps)$/, `unexpected process visible inside: ${p}`);
  assert.ok(procs.filter((p) => / perl$/.test(p)).length <= 1, `one reporter at most: ${JSON.stringify(procs)}`);
  // The host has far more processes than the sandbox shows (the server, its parents, ...).
  assert.ok((await hostProcesses()).length > procs.length + 5);
  const py = await probe('pidns', 'import os, json\nprint(json.dumps({"pid": os.getpid(), "ppid": os.getppid()}))');
  assert.ok(Number(py['pid']) <= 3, `python's pid inside: ${String(py['pid'])}`);
});

test('from the host, every process of a running sandbox (up to bwrap) has a non-root uid', async () => {
  const res = await postJSON(`${server.url}/api/sessions/hostuid/stream`, { language: 'bash', code: 'echo ready\nsleep 4242\necho never' });
  assert.equal(res.status, 200);
  const execID = res.headers.get('sluice-execution-id');
  assert.ok(execID);
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const eventsP = readSSE(res, (ev) => {
    if (ev.type === 'stdout' && ev.content.includes('ready')) ready();
  });
  await isReady;
  const serverPID = server.proc.pid;
  assert.ok(serverPID !== undefined);
  const sleeper = await waitFor('sleep 4242 on the host', 5000, async () => {
    const procs = await hostProcesses();
    const byPID = new Map(procs.map((p) => [p.pid, p]));
    // Ours: a descendant of this test's server.
    return procs.find((p) => {
      if (p.args !== 'sleep 4242') return false;
      for (let q = byPID.get(p.ppid); q; q = byPID.get(q.ppid)) if (q.pid === serverPID) return true;
      return false;
    });
  });
  assert.ok(sleeper.uid >= 1000 && sleeper.uid !== 0, `sleep 4242 runs as host uid ${sleeper.uid}`);
  assert.ok(sleeper.uid >= UID_BASE && sleeper.uid < UID_BASE + UID_COUNT, `host uid ${sleeper.uid} from the configured pool`);
  // The whole chain between the server and the program: the program, the status reporter,
  // sandbox PID 1, the outer bwrap, then the keeper (root by design: it only forks, drops
  // privileges and reaps, outside every namespace).
  const procs = await hostProcesses();
  const byPID = new Map(procs.map((p) => [p.pid, p]));
  const chain: HostProc[] = [];
  for (let q: HostProc | undefined = sleeper; q && q.pid !== serverPID; q = byPID.get(q.ppid)) chain.push(q);
  const bwrapAt = chain.findLastIndex((p) => p.args.startsWith('/usr/bin/bwrap'));
  assert.ok(bwrapAt >= 2, `sleep, reporter, sandbox init, bwrap: ${JSON.stringify(chain)}`);
  const keeper = chain.slice(bwrapAt + 1);
  assert.equal(keeper.length, 1, `only the keeper between bwrap and the server: ${JSON.stringify(keeper)}`);
  assert.match(keeper[0]?.args ?? '', /^\/usr\/bin\/perl -e /);
  for (const p of chain.slice(0, bwrapAt + 1)) {
    for (const uid of await uidsOf(p.pid)) assert.ok(uid !== 0 && uid >= 1000, `${p.args} (pid ${p.pid}) has uid ${uid}`);
  }

  const cancel = await fetch(`${server.url}/api/executions/${execID}/cancel`, { method: 'POST' });
  assert.equal(cancel.status, 202);
  await cancel.body?.cancel();
  const events = await eventsP;
  assert.equal(doneOf(events).reason, 'cancelled');
  assert.ok(!text(events, 'stdout').includes('never'));
  await assertNothingLeft(sleeper.uid, 'cancelled sleep 4242');
});

test('rlimits: no core dumps, at most 256 open files by default', async () => {
  const r = await probe(
    'rlimits',
    [
      'import resource, json',
      'g = resource.getrlimit',
      'print(json.dumps({"core": g(resource.RLIMIT_CORE), "nofile": g(resource.RLIMIT_NOFILE), "fsize": g(resource.RLIMIT_FSIZE)}))',
    ].join('\n'),
  );
  assert.deepEqual(r['core'], [0, 0]);
  const [soft, hard] = r['nofile'] as [number, number];
  assert.ok(soft <= 256 && hard <= 256 && soft > 0, `nofile ${soft}/${hard}`);
  const [fsSoft, fsHard] = r['fsize'] as [number, number];
  assert.ok(fsSoft > 0 && fsHard > 0 && fsHard !== -1, 'a file size limit is always set');
  // Opening more than the limit fails with EMFILE.
  const many = await probe(
    'rlimits',
    [
      'import os, json, errno',
      'fds = []',
      'err = None',
      'try:',
      '    for i in range(1000): fds.append(os.open("/dev/null", os.O_RDONLY))',
      'except OSError as e:',
      '    err = errno.errorcode.get(e.errno)',
      'print(json.dumps({"opened": len(fds), "err": err}))',
    ].join('\n'),
  );
  assert.equal(many['err'], 'EMFILE');
  assert.ok(Number(many['opened']) <= 256 - 3, `opened ${String(many['opened'])}`);
});

test('file size limit: writing 100 MB in a session with limits.file_size = 1 MiB fails with EFBIG at 1 MiB', async () => {
  await createSession({ id: 'fsize', language: 'python', limits: { file_size: 1048576 } });
  try {
    const r = await probe(
      'fsize',
      [
        'import os, json, errno',
        'err = None',
        'written = 0',
        'block = b"z" * 65536',
        'try:',
        '    with open("/workspace/big", "wb", buffering=0) as f:',
        '        while written < 100 * 1000 * 1000:',
        '            written += f.write(block)',
        'except OSError as e:',
        '    err = errno.errorcode.get(e.errno)',
        'import resource',
        'print(json.dumps({"err": err, "size": os.path.getsize("/workspace/big"), "written": written,',
        '  "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)}))',
      ].join('\n'),
    );
    assert.equal(r['err'], 'EFBIG');
    assert.equal(r['size'], 1048576);
    assert.deepEqual(r['fsize'], [1048576, 1048576]);
  } finally {
    await deleteSession('fsize');
  }
});

test('a fork bomb (limits.processes = 64, timeout 5 s) is contained while another session streams normally', async (t) => {
  await createSession({ id: 'bomb', language: 'bash', limits: { processes: 64 }, timeout: 5 });
  const marker = `sluice-bomb-marker-${randomInt(1e9)}`;
  const t0 = performance.now();
  const bombP = run('bomb', { code: `(exec -a ${marker} sleep 30) &\n:(){ :|:& };:\nsleep 30\n` });

  // The bomb's host uid, found by the marker process it started first.
  const serverPID = server.proc.pid;
  const bombUID = await waitFor('the bomb marker on the host', 5000, async () => (await hostProcesses()).find((p) => p.args.startsWith(marker))?.uid);
  assert.ok(bombUID >= UID_BASE && bombUID < UID_BASE + UID_COUNT && bombUID !== 0);

  // Meanwhile: a second session streams line by line, and the server answers at once.
  const n = 8;
  const bystanderP = run('bystander', { language: 'python', code: `import time\nfor i in range(${n}):\n    print(f"tick {i}")\n    time.sleep(0.3)\n` });
  let maxTasks = 0;
  let maxHealthMs = 0;
  let bombDone = false;
  void bombP.finally(() => (bombDone = true)).catch(() => {});
  while (!bombDone) {
    const procs = await hostProcesses();
    maxTasks = Math.max(maxTasks, procs.filter((p) => p.uid === bombUID).length);
    const h0 = performance.now();
    const health = await fetch(`${server.url}/healthz`);
    maxHealthMs = Math.max(maxHealthMs, performance.now() - h0);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    await sleep(200);
  }
  const bomb = await bombP;
  const elapsed = performance.now() - t0;
  const bystander = await bystanderP;

  t.diagnostic(`fork bomb: ended ${bomb.done.reason} after ${Math.round(elapsed)} ms; peak ${maxTasks} processes of its uid; /healthz ≤ ${Math.round(maxHealthMs)} ms`);
  assert.ok(['timeout', 'exited'].includes(bomb.done.reason), `bomb ended with ${bomb.done.reason}`);
  assert.ok(elapsed < 5000 + GRACE_MS + 3000, `bomb ended after ${Math.round(elapsed)} ms`);
  assert.ok(maxTasks > 1 && maxTasks <= 64, `processes of the bomb's uid peaked at ${maxTasks}`);
  assert.ok(maxHealthMs < 1000, `/healthz took up to ${Math.round(maxHealthMs)} ms during the bomb`);

  assert.equal(bystander.done.reason, 'exited');
  assert.equal(bystander.done.exit_code, 0);
  assert.equal(bystander.stdout, Array.from({ length: n }, (_, i) => `tick ${i}\n`).join(''));
  const ticks = bystander.events.filter((e) => e.type === 'stdout');
  assert.ok(ticks.length >= n, 'each tick in its own event');
  const first = ticks[0];
  assert.ok(first);
  assert.ok(bystander.done.arrivedAt - first.arrivedAt > 1500, 'the bystander streamed live, not at the end');
  const gaps = ticks.slice(1).map((e, i) => e.arrivedAt - (ticks[i]?.arrivedAt ?? 0));
  for (const g of gaps) assert.ok(g < 1500, `bystander lines spaced ${gaps.map(Math.round).join(', ')} ms`);

  // done comes only after every process of the execution is gone.
  await assertNothingLeft(bombUID, 'fork bomb');
  assert.ok(serverPID !== undefined && server.proc.exitCode === null, 'the server is still running');
  const after = await run('bystander', { language: 'bash', code: 'echo still fine' });
  assert.equal(after.stdout, 'still fine\n');
  await deleteSession('bomb');
});
