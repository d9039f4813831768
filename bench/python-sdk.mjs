// One stream's throughput through the Python SDK (sync and async) beside the TypeScript SDK's,
// same server, same program, same run: `npm run build && node bench/python-sdk.mjs`.
// SLUICE_BENCH_PY_MIB (default 64) MiB of 64-byte lines per run, SLUICE_BENCH_PY_REPEATS (3)
// runs per client, alternating; each measured from the request to `done` inside the client
// (the Python interpreter's own start is not counted). Needs python3 with httpx (Debian's
// python3-httpx, installed with apt-get when missing and run as root).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Sluice } from '../packages/sdk/dist/index.js';
import { ROOT, commandWorks, ensureDebianPackages, intEnv, startServer } from './common.mjs';

const MIB = intEnv('SLUICE_BENCH_PY_MIB', 64);
const REPEATS = intEnv('SLUICE_BENCH_PY_REPEATS', 3);
const LIMIT = 512 * 1024 * 1024;
const BYTES = MIB * 16 * 65536;
const CODE = ['import sys', 'block = (b"x" * 63 + b"\\n") * 1024', `for _ in range(${MIB * 16}):`, '    sys.stdout.buffer.write(block)'].join('\n');

// The Python side: one stream, bytes counted, seconds from the request to `done` printed as JSON.
const PY = `
import asyncio, json, sys, time
from sluice import AsyncSluice, Sluice
url, flavour, code = sys.argv[1], sys.argv[2], sys.argv[3]
def sync():
    with Sluice(url) as c:
        s = c.session("bench-py-sync")
        t = time.perf_counter(); n = 0; reason = ""
        for ev in s.stream(code, mode="process"):
            if ev.type == "stdout": n += len(ev.content)
            elif ev.type == "done": reason = ev.reason
        return time.perf_counter() - t, n, reason
async def main():
    async with AsyncSluice(url) as c:
        s = c.session("bench-py-async")
        t = time.perf_counter(); n = 0; reason = ""
        async for ev in s.stream(code, mode="process"):
            if ev.type == "stdout": n += len(ev.content)
            elif ev.type == "done": reason = ev.reason
        return time.perf_counter() - t, n, reason
secs, n, reason = sync() if flavour == "sync" else asyncio.run(main())
print(json.dumps({"seconds": secs, "bytes": n, "reason": reason}))
`;

async function typescript(sluice) {
  const session = sluice.session('bench-ts');
  const t = performance.now();
  let bytes = 0;
  let reason = '';
  for await (const ev of session.stream(CODE, { mode: 'process' })) {
    if (ev.type === 'stdout') bytes += ev.content.length;
    else if (ev.type === 'done') reason = ev.reason;
  }
  return { seconds: (performance.now() - t) / 1000, bytes, reason };
}

function python(url, flavour) {
  return new Promise((resolveRun, reject) => {
    const env = { ...process.env, PYTHONPATH: join(ROOT, 'python', 'src'), PYTHONDONTWRITEBYTECODE: '1' };
    const child = spawn('/usr/bin/python3', ['-c', PY, url, flavour, CODE], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t) => (out += t));
    child.once('exit', (code) => (code === 0 ? resolveRun(JSON.parse(out)) : reject(new Error(`python exited with ${code}`))));
  });
}

await ensureDebianPackages(['python3-httpx'], () => commandWorks('/usr/bin/python3', ['-c', 'import httpx']));
const server = await startServer({ tag: 'bench-py', env: { SLUICE_OUTPUT_LIMIT: String(LIMIT), SLUICE_MAX_OUTPUT_LIMIT: String(LIMIT) } });
try {
  const sluice = new Sluice({ baseURL: server.url });
  for (const id of ['bench-ts', 'bench-py-sync', 'bench-py-async']) {
    await sluice.sessions.create({ id, limits: { outputBytes: LIMIT } });
  }
  const runs = { 'TypeScript SDK': [], 'Python SDK (sync)': [], 'Python SDK (async)': [] };
  console.log(`one stream, ${MIB} MiB of 64-byte lines, ${REPEATS} runs each (request → done, in the client)`);
  for (let i = 0; i < REPEATS; i++) {
    for (const [name, run] of [
      ['TypeScript SDK', () => typescript(sluice)],
      ['Python SDK (sync)', () => python(server.url, 'sync')],
      ['Python SDK (async)', () => python(server.url, 'async')],
    ]) {
      const r = await run();
      if (r.bytes !== BYTES || r.reason !== 'exited') throw new Error(`${name}: got ${r.bytes} of ${BYTES} bytes, ${r.reason}`);
      runs[name].push(BYTES / 1e6 / r.seconds);
    }
  }
  for (const [name, mbps] of Object.entries(runs)) {
    const sorted = [...mbps].sort((a, b) => a - b);
    console.log(`${name.padEnd(20)} median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} MB/s, best ${sorted.at(-1).toFixed(0)} MB/s`);
  }
  for (const id of ['bench-ts', 'bench-py-sync', 'bench-py-async']) await sluice.sessions.delete(id);
} finally {
  await server.stop();
}
