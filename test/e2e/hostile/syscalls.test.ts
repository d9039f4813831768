/**
 * The seccomp deny-list end to end (docs/seccomp.md): code run through the
 * real server calls the denied syscalls directly (python ctypes, `socket`, `os`, `fcntl`) and
 * gets the policy's errno, while python, node, bash and java keep working with their threads,
 * subprocesses and worker pools. Every test runs beside a well-behaved session that must keep
 * streaming line by line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { seccompArch } from '@sluice/sandbox';
import { startServer, type TestServer } from '../helpers/server.js';
import { postJSON, runStream, type RunOutcome } from '../helpers/client.js';

/** Host uids of this server's sessions: a random range of its own (see isolation.test.ts). */
const UID_BASE = 3_000_000 + randomInt(0, 50_000) * 64;

let server: TestServer;
before(async () => {
  server = await startServer({
    SLUICE_UID_BASE: String(UID_BASE),
    SLUICE_UID_COUNT: '64',
    // Only for the one session below that asks for network: true.
    SLUICE_ALLOW_NETWORK: '1',
  });
});
after(async () => {
  await server?.stop();
});


const run = (session: string, body: Record<string, unknown>): Promise<RunOutcome> => runStream(server.url, session, { timeout: 60, ...body });

/** The last stdout line of a run that must have exited 0, parsed as JSON. */
function lastJSON(r: RunOutcome, what: string): Record<string, unknown> {
  assert.equal(r.done.reason, 'exited', `${what}: ${r.stderr}`);
  assert.equal(r.done.exit_code, 0, `${what} exited ${r.done.exit_code}: ${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trimEnd().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as Record<string, unknown>;
}

/**
 * Runs `check` while another session prints a line every 150 ms, then asserts that session
 * ended normally with every line, each in its own event, spread over time (streamed live).
 */
async function besideBystander<T>(name: string, check: () => Promise<T>): Promise<T> {
  const n = 8;
  const bystanderP = run(`${name}-bystander`, {
    language: 'python',
    code: `import time\nfor i in range(${n}):\n    print(f"tick {i}")\n    time.sleep(0.15)\n`,
  });
  const result = await check();
  const b = await bystanderP;
  assert.equal(b.done.reason, 'exited', `bystander beside ${name}: ${b.stderr}`);
  assert.equal(b.done.exit_code, 0, `bystander beside ${name}: ${b.stderr}`);
  assert.equal(b.stdout, Array.from({ length: n }, (_, i) => `tick ${i}\n`).join(''));
  const ticks = b.events.filter((e) => e.type === 'stdout');
  assert.ok(ticks.length >= n / 2, `bystander beside ${name}: ${ticks.length} stdout events for ${n} lines`);
  const first = ticks[0];
  assert.ok(first && b.done.arrivedAt - first.arrivedAt > 500, `bystander beside ${name} streamed live, not at the end`);
  return result;
}

/** Syscall numbers of this host's architecture, for the python below. */
function numbers(): Record<string, number> {
  const table = seccompArch(process.arch).syscalls;
  const out: Record<string, number> = {};
  for (const [name, nr] of Object.entries(table)) if (nr !== undefined) out[name] = nr;
  return out;
}

/** Python prelude: `sc(nr, *args)` makes a raw syscall and answers "ok" or the errno's name. */
const PRELUDE = [
  'import ctypes, errno, json, os, socket, sys',
  `NR = json.loads(${JSON.stringify(JSON.stringify(numbers()))})`,
  'libc = ctypes.CDLL(None, use_errno=True)',
  'libc.syscall.restype = ctypes.c_long',
  'def sc(nr, *args):',
  '    ctypes.set_errno(0)',
  '    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])',
  '    if r >= 0:',
  '        return "ok"',
  '    e = ctypes.get_errno()',
  '    return errno.errorcode.get(e, str(e))',
  'def oserr(fn):',
  '    try:',
  '        fn()',
  '        return "ok"',
  '    except OSError as e:',
  '        return errno.errorcode.get(e.errno, str(e.errno))',
].join('\n');

async function probe(session: string, code: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return lastJSON(await run(session, { language: 'python', code: `${PRELUDE}\n${code}`, ...extra }), session);
}

test('the filter is installed on every process inside, and kernel attack surface fails with EPERM or ENOSYS', async () => {
  const r = await besideBystander('surface', () =>
    probe(
      'surface',
      [
        'import subprocess',
        'def seccomp_of(path):',
        '    st = dict(l.split(":\\t", 1) for l in open(path).read().splitlines() if ":\\t" in l)',
        '    return st.get("Seccomp", "").strip()',
        'params = ctypes.create_string_buffer(120)',
        'attr = ctypes.create_string_buffer(128)',
        'out = {',
        '  "seccomp_self": seccomp_of("/proc/self/status"),',
        '  "seccomp_pid1": seccomp_of("/proc/1/status"),',
        '  "seccomp_parent": seccomp_of(f"/proc/{os.getppid()}/status"),',
        '  "seccomp_child": subprocess.run(["bash", "-c", "grep ^Seccomp: /proc/self/status"], capture_output=True, text=True).stdout.split()[-1],',
        '  "io_uring_setup": sc(NR["io_uring_setup"], 8, ctypes.addressof(params)),',
        '  "io_uring_enter": sc(NR["io_uring_enter"], 0, 1, 0, 0, 0, 0),',
        '  "io_uring_register": sc(NR["io_uring_register"], 0, 0, 0, 0),',
        '  "bpf": sc(NR["bpf"], 0, ctypes.addressof(attr), 128),',
        '  "perf_event_open": sc(NR["perf_event_open"], ctypes.addressof(attr), 0, -1, -1, 0),',
        '  "keyctl": sc(NR["keyctl"], 0, -3, 0),',
        '  "add_key": sc(NR["add_key"], 0, 0, 0, 0, -3),',
        '  "userfaultfd": sc(NR["userfaultfd"], 0),',
        '  "process_vm_readv": sc(NR["process_vm_readv"], os.getppid(), 0, 0, 0, 0, 0),',
        '  "personality_set": sc(NR["personality"], 0x0040000),',
        '  "personality_query": sc(NR["personality"], 0xffffffff),',
        '  "syslog": sc(NR["syslog"], 3, 0, 0),',
        '  "clone3": sc(NR["clone3"], 0, 0),',
        '  "fsopen": sc(NR["fsopen"], 0, 0),',
        '  "open_tree": sc(NR["open_tree"], -100, 0, 0),',
        '  "mount_setattr": sc(NR["mount_setattr"], -100, 0, 0, 0, 0),',
        '}',
        'sleeper = subprocess.Popen(["sleep", "30"])',
        'out["ptrace_attach_child"] = sc(NR["ptrace"], 16, sleeper.pid, 0, 0)',
        'sleeper.kill(); sleeper.wait()',
        '# Last: were it allowed, any later signal would stop this process for its tracer.',
        'out["ptrace_traceme"] = sc(NR["ptrace"], 0, 0, 0, 0)',
        'print(json.dumps(out))',
      ].join('\n'),
    ),
  );
  // 2 = SECCOMP_MODE_FILTER: the program, its parent (the status reporter), PID 1 and a child.
  for (const who of ['self', 'pid1', 'parent', 'child']) assert.equal(r[`seccomp_${who}`], '2', `Seccomp: of ${who}`);
  for (const name of [
    'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'ptrace_traceme', 'ptrace_attach_child', 'bpf', 'perf_event_open',
    'keyctl', 'add_key', 'userfaultfd', 'process_vm_readv', 'personality_set', 'syslog',
  ]) {
    assert.equal(r[name], 'EPERM', name);
  }
  assert.equal(r['personality_query'], 'ok', 'personality(0xffffffff) only reads the persona');
  for (const name of ['clone3', 'fsopen', 'open_tree', 'mount_setattr']) assert.equal(r[name], 'ENOSYS', name);
});

test('sockets: only AF_UNIX, with the family compared on its low 32 bits; AF_UNIX socketpair works', async () => {
  const r = await besideBystander('sockets', () =>
    probe(
      'sockets',
      [
        'def pair():',
        '    a, b = socket.socketpair()',
        '    a.sendall(b"ping")',
        '    got = b.recv(16)',
        '    a.close(); b.close()',
        '    return got.decode()',
        'def unix_listen():',
        '    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
        '    s.bind("/tmp/sock"); s.listen(1)',
        '    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect("/tmp/sock")',
        '    conn, _ = s.accept(); c.sendall(b"hello"); got = conn.recv(16)',
        '    for x in (c, conn, s): x.close()',
        '    return got.decode()',
        'out = {',
        '  "inet": oserr(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),',
        '  "inet_dgram": oserr(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),',
        '  "inet6": oserr(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)),',
        '  "netlink": oserr(lambda: socket.socket(16, socket.SOCK_RAW, 0)),',
        '  "vsock": oserr(lambda: socket.socket(40, socket.SOCK_STREAM, 0)),',
        '  "packet": oserr(lambda: socket.socket(17, socket.SOCK_RAW, 0)),',
        '  "inet_junk": sc(NR["socket"], 0x100000002, 1, 0),',
        '  "netlink_junk": sc(NR["socket"], 0xffffffff00000010, 3, 0),',
        '  "socketpair_inet_junk": sc(NR["socketpair"], 0x100000002, 1, 0, ctypes.addressof(ctypes.create_string_buffer(8))),',
        '  "unix_junk": sc(NR["socket"], 0x100000001, 1, 0),',
        '  "pair": pair(),',
        '  "unix_listen": unix_listen(),',
        '}',
        'print(json.dumps(out))',
      ].join('\n'),
    ),
  );
  for (const name of ['inet', 'inet_dgram', 'inet6', 'netlink', 'vsock', 'packet', 'inet_junk', 'netlink_junk', 'socketpair_inet_junk']) {
    assert.equal(r[name], 'EAFNOSUPPORT', name);
  }
  // The kernel reads the family as an int: 0x1_00000001 is AF_UNIX, and allowed.
  assert.equal(r['unix_junk'], 'ok');
  assert.equal(r['pair'], 'ping');
  assert.equal(r['unix_listen'], 'hello');
});

test('a session with network: true may open IP sockets, but still no netlink or vsock', async () => {
  const created = await postJSON(`${server.url}/api/sessions`, { id: 'net-on', network: true });
  assert.equal(created.status, 201, await created.text());
  const r = await besideBystander('net-on', () =>
    probe(
      'net-on',
      [
        'out = {',
        '  "inet": oserr(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),',
        '  "inet6": oserr(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()),',
        '  "netlink": oserr(lambda: socket.socket(16, socket.SOCK_RAW, 0)),',
        '  "vsock": oserr(lambda: socket.socket(40, socket.SOCK_STREAM, 0)),',
        '  "ptrace": sc(NR["ptrace"], 0, 0, 0, 0),',
        '}',
        'print(json.dumps(out))',
      ].join('\n'),
    ),
  );
  assert.deepEqual(r, { inet: 'ok', inet6: 'ok', netlink: 'EAFNOSUPPORT', vsock: 'EAFNOSUPPORT', ptrace: 'EPERM' });
  const del = await fetch(`${server.url}/api/sessions/net-on`, { method: 'DELETE' });
  await del.body?.cancel();
});

test('no namespaces and no mounts: unshare, setns, clone(CLONE_NEWUSER), mount, umount2, chroot, pivot_root fail', async () => {
  const r = await besideBystander('ns', () =>
    probe(
      'ns',
      [
        'import subprocess',
        'libc.unshare.argtypes = [ctypes.c_int]',
        'def ret(r):',
        '    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno())',
        'def clone_newuser():',
        '    r = libc.syscall(ctypes.c_long(NR["clone"]), ctypes.c_long(0x10000000 | 17), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))',
        '    if r == 0:',
        '        os._exit(0)  # the child of a clone that should not have happened',
        '    if r > 0:',
        '        os.waitpid(r, 0)',
        '        return "ok"',
        '    return errno.errorcode.get(ctypes.get_errno())',
        'os.makedirs("/tmp/mnt", exist_ok=True)',
        'cmd = subprocess.run(["unshare", "-U", "true"], capture_output=True, text=True)',
        'out = {',
        '  "unshare_newuser": ret(libc.unshare(0x10000000)),',
        '  "unshare_newns": ret(libc.unshare(0x00020000)),',
        '  "unshare_newnet": ret(libc.unshare(0x40000000)),',
        '  "setns": sc(NR["setns"], 0, 0),',
        '  "clone_newuser": clone_newuser(),',
        '  "clone_newpid": sc(NR["clone"], 0x20000000 | 17, 0, 0, 0, 0),',
        '  "mount": ret(libc.mount(b"none", b"/tmp/mnt", b"tmpfs", ctypes.c_ulong(0), None)),',
        '  "umount2": ret(libc.umount2(b"/tmp", 2)),',
        '  "chroot": oserr(lambda: os.chroot("/tmp")),',
        '  "pivot_root": sc(NR["pivot_root"], ctypes.addressof(ctypes.create_string_buffer(b"/tmp")), ctypes.addressof(ctypes.create_string_buffer(b"/tmp/mnt"))),',
        '  "unshare_cmd_rc": cmd.returncode,',
        '  "unshare_cmd_err": cmd.stderr.strip(),',
        '  "fork": subprocess.run(["true"]).returncode,',
        '}',
        'print(json.dumps(out))',
      ].join('\n'),
    ),
  );
  for (const name of ['unshare_newuser', 'unshare_newns', 'unshare_newnet', 'setns', 'clone_newuser', 'clone_newpid', 'mount', 'umount2', 'chroot', 'pivot_root']) {
    assert.equal(r[name], 'EPERM', name);
  }
  assert.notEqual(r['unshare_cmd_rc'], 0, `unshare -U true: ${String(r['unshare_cmd_err'])}`);
  assert.equal(r['fork'], 0, 'plain fork + exec still works');
});

test('ioctl TIOCSTI and TIOCLINUX fail with EPERM, even with junk in the upper 32 bits; other ioctls pass', async () => {
  const r = await besideBystander('tty', () =>
    probe(
      'tty',
      [
        'import fcntl, termios',
        'ch = ctypes.create_string_buffer(b"x")',
        'out = {',
        '  "tiocsti": oserr(lambda: fcntl.ioctl(1, termios.TIOCSTI, b"x")),',
        '  "tiocsti_junk": sc(NR["ioctl"], 1, 0x100005412, ctypes.addressof(ch)),',
        '  "tiocsti_stdin": sc(NR["ioctl"], 0, 0x5412, ctypes.addressof(ch)),',
        '  "tioclinux": sc(NR["ioctl"], 1, 0x541C, ctypes.addressof(ch)),',
        '  "tcgets": oserr(lambda: fcntl.ioctl(1, termios.TCGETS, bytes(64))),',
        '}',
        'r, w = os.pipe()',
        'os.write(w, b"abc")',
        'out["fionread"] = int.from_bytes(fcntl.ioctl(r, termios.FIONREAD, bytes(4)), "little")',
        'print(json.dumps(out))',
      ].join('\n'),
    ),
  );
  for (const name of ['tiocsti', 'tiocsti_junk', 'tiocsti_stdin', 'tioclinux']) assert.equal(r[name], 'EPERM', name);
  // Not denied: stdout is a pipe, so the kernel itself answers ENOTTY.
  assert.equal(r['tcgets'], 'ENOTTY');
  assert.equal(r['fionread'], 3, 'FIONREAD on a pipe');
});

test('x86_64: an x32-ABI syscall kills the process with SIGSYS; nr -1 is just ENOSYS', { skip: process.arch !== 'x64' && 'x32 exists only on x86_64' }, async () => {
  const r = await besideBystander('x32', () =>
    probe(
      'x32',
      [
        'import subprocess',
        '# getpid (39) through the x32 ABI: same audit arch, bit 30 set in the number.',
        'code = "import ctypes; ctypes.CDLL(None).syscall(0x40000000 + 39); print(\'survived\')"',
        'p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)',
        'print(json.dumps({"rc": p.returncode, "stdout": p.stdout, "minus1": sc(-1), "alive": True}))',
      ].join('\n'),
    ),
  );
  assert.equal(r['rc'], -31, `the x32 getpid caller ended with ${String(r['rc'])} (expected SIGSYS)`);
  assert.equal(r['stdout'], '');
  assert.equal(r['minus1'], 'ENOSYS');
  assert.equal(r['alive'], true);
});

test('python still works: threads, subprocess, fork, a multiprocessing pool, asyncio, AF_UNIX pipes', async () => {
  const r = await besideBystander('py-ok', () =>
    probe(
      'py-ok',
      [
        'import asyncio, multiprocessing, subprocess',
        'from concurrent.futures import ThreadPoolExecutor',
        'def sq(x): return x * x',
        'if __name__ == "__main__":',
        '    with ThreadPoolExecutor(8) as ex: threads = sum(ex.map(sq, range(100)))',
        '    with multiprocessing.Pool(4) as pool: procs = sum(pool.map(sq, range(100)))',
        '    pid = os.fork()',
        '    if pid == 0: os._exit(7)',
        '    _, status = os.waitpid(pid, 0)',
        '    async def main():',
        '        p = await asyncio.create_subprocess_exec("bash", "-c", "echo async", stdout=asyncio.subprocess.PIPE)',
        '        out, _ = await p.communicate()',
        '        return out.decode().strip()',
        '    print(json.dumps({"threads": threads, "pool": procs, "fork": os.waitstatus_to_exitcode(status),',
        '        "subprocess": subprocess.run(["bash", "-c", "echo $((6*7))"], capture_output=True, text=True).stdout.strip(),',
        '        "asyncio": asyncio.run(main())}))',
      ].join('\n'),
    ),
  );
  assert.deepEqual(r, { threads: 328350, pool: 328350, fork: 7, subprocess: '42', asyncio: 'async' });
});

test('node still works: worker_threads, child_process (exec, spawn, fork with IPC), fs promises, crypto', async () => {
  const code = [
    "import { Worker } from 'node:worker_threads';",
    "import { execFileSync, spawn, fork } from 'node:child_process';",
    "import { readFile, writeFile } from 'node:fs/promises';",
    "import { randomBytes, createHash } from 'node:crypto';",
    'const worker = await new Promise((resolve, reject) => {',
    "  const w = new Worker('require(\"node:worker_threads\").parentPort.postMessage(6 * 7)', { eval: true });",
    "  w.once('message', resolve); w.once('error', reject);",
    '});',
    'const workers = await Promise.all([1, 2, 3, 4].map((n) => new Promise((resolve, reject) => {',
    "  const w = new Worker('const { parentPort, workerData } = require(\"node:worker_threads\"); parentPort.postMessage(workerData * 2)', { eval: true, workerData: n });",
    "  w.once('message', resolve); w.once('error', reject);",
    '})));',
    "const exec = execFileSync('/usr/bin/bash', ['-c', 'echo from-bash']).toString().trim();",
    'const piped = await new Promise((resolve) => {',
    "  const c = spawn(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], { stdio: ['pipe', 'pipe', 'inherit'] });",
    "  let s = ''; c.stdout.on('data', (d) => (s += d)); c.on('close', (code) => resolve({ code, s })); c.stdin.end('echoed');",
    '});',
    "await writeFile('/tmp/child.cjs', 'process.on(\"message\", (m) => { process.send(m + 1); process.exit(0); });');",
    'const ipc = await new Promise((resolve, reject) => {',
    "  const c = fork('/tmp/child.cjs'); c.once('message', resolve); c.once('error', reject); c.send(41);",
    '});',
    "await writeFile('/tmp/big.txt', 'x'.repeat(1 << 20));",
    "const read = (await readFile('/tmp/big.txt', 'utf8')).length;",
    "const hash = createHash('sha256').update(randomBytes(32)).digest('hex').length;",
    'console.log(JSON.stringify({ worker, workers, exec, piped, ipc, read, hash }));',
  ].join('\n');
  const r = await besideBystander('node-ok', async () => lastJSON(await run('node-ok', { language: 'javascript', code }), 'node'));
  assert.deepEqual(r, { worker: 42, workers: [2, 4, 6, 8], exec: 'from-bash', piped: { code: 0, s: 'echoed' }, ipc: 42, read: 1 << 20, hash: 64 });
});

test('bash still works: pipes, subshells, background jobs, command and process substitution', async () => {
  const code = [
    'set -euo pipefail',
    'squares=0',
    'while read -r i; do squares=$((squares + i * i)); done < <(seq 1 5)',
    'words=$(seq 1 7 | tr "\\n" " " | wc -w)',
    '( sleep 0.1; echo bg > /tmp/bg ) &',
    'wait',
    'lines=$(wc -l < <(printf "a\\nb\\nc\\n"))',
    'coproc CAT { cat; }',
    'echo hi >&"${CAT[1]}"; exec {CAT[1]}>&-',
    'read -r co <&"${CAT[0]}"',
    'echo "{\\"squares\\": $squares, \\"words\\": $words, \\"bg\\": \\"$(cat /tmp/bg)\\", \\"lines\\": $lines, \\"coproc\\": \\"$co\\"}"',
  ].join('\n');
  const r = await besideBystander('bash-ok', async () => lastJSON(await run('bash-ok', { language: 'bash', code }), 'bash'));
  assert.deepEqual(r, { squares: 55, words: 7, bg: 'bg', lines: 3, coproc: 'hi' });
});

test('java 17 still works: the single-file source launcher, a thread pool, a child process', async (t) => {
  if (!existsSync('/usr/bin/java')) {
    t.skip('/usr/bin/java is not installed on this host');
    return;
  }
  const java = [
    'import java.util.concurrent.*;',
    'import java.util.stream.*;',
    'public class Main {',
    '  public static void main(String[] args) throws Exception {',
    '    ExecutorService pool = Executors.newFixedThreadPool(4);',
    '    int sum = 0;',
    '    for (Future<Integer> f : pool.invokeAll(IntStream.range(0, 100).mapToObj(i -> (Callable<Integer>) () -> i * i).collect(Collectors.toList()))) sum += f.get();',
    '    pool.shutdown();',
    '    Process p = new ProcessBuilder("bash", "-c", "echo child").start();',
    '    String child = new String(p.getInputStream().readAllBytes()).trim();',
    '    p.waitFor();',
    '    System.out.println("{\\"sum\\": " + sum + ", \\"child\\": \\"" + child + "\\", \\"feature\\": " + Runtime.version().feature() + "}");',
    '  }',
    '}',
  ].join('\n');
  const code = [
    "cat > /workspace/Main.java <<'JAVA'",
    java,
    'JAVA',
    'exec java -Xmx128m -XX:ActiveProcessorCount=2 -XX:+UseSerialGC /workspace/Main.java',
  ].join('\n');
  const r = await besideBystander('java-ok', async () => lastJSON(await run('java-ok', { language: 'bash', code }), 'java'));
  assert.equal(r['sum'], 328350);
  assert.equal(r['child'], 'child');
  assert.ok(Number(r['feature']) >= 17, `java feature version ${String(r['feature'])}`);
});
