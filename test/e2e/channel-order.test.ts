/**
 * The code → Sluice channel keeps the program's order (real server, real sandboxes): a
 * `progress` event takes its place in `seq` exactly where the program made it relative to its
 * stdout, with no pause between calls, in process and kernel mode, for every language helper,
 * from several threads (each thread's order), under load, and a flood of raw lines on the channel
 * neither loses a helper's place nor starves a neighbour session's stream.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecutionEvent, Language } from '@sluice/protocol';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON, readSSE, runStream, type RunOutcome } from './helpers/client.js';

let server: TestServer;
const languages = new Map<string, Record<string, unknown>>();
before(async () => {
  server = await startServer();
  const list = (await (await fetch(`${server.url}/api/languages`)).json()) as { languages: Record<string, unknown>[] };
  for (const l of list.languages) languages.set(String(l['language']), l);
});
after(async () => {
  await server.stop();
});

let sessions = 0;
function session(name: string): string {
  return `order-${name}-${++sessions}`;
}

function installed(t: TestContext, language: Language): boolean {
  const info = languages.get(language);
  if (info?.['installed'] === true) return true;
  t.skip(`${language} is not installed here: ${String(info?.['reason'])}`);
  return false;
}

/**
 * The log as tokens: `p<percent>` for a progress event, one token per stdout line. A line split
 * across chunks would show as two tokens and fail the comparison, as it should not happen here.
 */
function tokens(events: readonly ExecutionEvent[]): string[] {
  const out: string[] = [];
  let partial = '';
  for (const e of events) {
    if (e.type === 'progress') {
      assert.equal(partial, '', `a progress event cut a line: ${JSON.stringify(partial)}`);
      out.push(`p${e.percent ?? e.message ?? '?'}`);
    } else if (e.type === 'stdout') {
      const lines = (partial + e.content).split('\n');
      partial = lines.pop() ?? '';
      out.push(...lines);
    }
  }
  if (partial !== '') out.push(partial);
  return out;
}

const STEPS = 50;
const expected = Array.from({ length: STEPS }, (_, i) => [`p${i}`, String(i)]).flat();

const programs: { language: Language; modes: ('process' | 'kernel')[]; code: string }[] = [
  { language: 'python', modes: ['process', 'kernel'], code: `from sluice import progress\nfor i in range(${STEPS}):\n    progress(percent=i)\n    print(i)` },
  {
    language: 'javascript',
    modes: ['process', 'kernel'],
    code: `const { progress } = require('sluice');\nfor (let i = 0; i < ${STEPS}; i++) {\n  progress(i);\n  console.log(i);\n}`,
  },
  { language: 'typescript', modes: ['process'], code: `import { progress } from 'sluice';\nfor (let i = 0; i < ${STEPS}; i++) {\n  progress(i);\n  console.log(i);\n}` },
  { language: 'bash', modes: ['process'], code: `for i in $(seq 0 ${STEPS - 1}); do\n  sluice-progress $i\n  echo $i\ndone` },
  { language: 'r', modes: ['process'], code: `for (i in 0:${STEPS - 1}) {\n  sluice_progress(i)\n  cat(i, "\\n", sep = "")\n}` },
  {
    language: 'java',
    modes: ['process'],
    code: `public class Main {\n  public static void main(String[] args) {\n    for (int i = 0; i < ${STEPS}; i++) {\n      Sluice.progress(i);\n      System.out.println(i);\n    }\n  }\n}\n`,
  },
];

for (const p of programs) {
  for (const mode of p.modes) {
    test(`${p.language} (${mode}): ${STEPS} progress calls and prints with no pause read back in the program's order`, async (t) => {
      if (!installed(t, p.language)) return;
      const r = await runStream(server.url, session(`${p.language}-${mode}`), { language: p.language, mode, code: p.code, timeout: 120 });
      assert.equal(r.done.exit_code, 0, r.stderr);
      assert.deepEqual(tokens(r.events), expected);
    });
  }
}

test('python: four threads each keep their own progress/print order', async () => {
  const code = [
    'import sys, threading',
    'from sluice import progress',
    'def work(t):',
    `    for k in range(${STEPS}):`,
    '        progress(message="t%d-%d" % (t, k))',
    // One write per line: print() writes the text and the newline separately.
    '        sys.stdout.write("t%d-%d\\n" % (t, k))',
    'threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]',
    'for th in threads: th.start()',
    'for th in threads: th.join()',
  ].join('\n');
  for (const mode of ['process', 'kernel'] as const) {
    const r = await runStream(server.url, session(`threads-${mode}`), { language: 'python', mode, code, timeout: 120 });
    assert.equal(r.done.exit_code, 0, r.stderr);
    const all = tokens(r.events);
    for (let th = 0; th < 4; th++) {
      const own = all.filter((x) => x.replace(/^p/, '').startsWith(`t${th}-`));
      const want = Array.from({ length: STEPS }, (_, k) => [`pt${th}-${k}`, `t${th}-${k}`]).flat();
      assert.deepEqual(own, want, `thread ${th} in ${mode} mode`);
    }
  }
});

test('under load: 200 concurrent streams, each run keeps its order', async () => {
  const n = 200;
  const loaded = await startServer({
    SLUICE_MAX_RUNNING: String(n),
    SLUICE_MAX_RUNNING_PER_TENANT: String(n),
    SLUICE_MAX_SESSIONS: String(n + 16),
    SLUICE_MAX_SESSIONS_PER_TENANT: String(n + 16),
  });
  try {
    const code = `from sluice import progress\nfor i in range(${STEPS}):\n    progress(percent=i)\n    print(i)`;
    const runs = await Promise.all(
      Array.from({ length: n }, (_, i) => runStream(loaded.url, `load-${i}`, { language: 'python', mode: 'process', code, timeout: 300 })),
    );
    runs.forEach((r: RunOutcome, i) => {
      assert.equal(r.done.exit_code, 0, `run ${i}: ${r.stderr}`);
      assert.deepEqual(tokens(r.events), expected, `run ${i}`);
    });
  } catch (err) {
    console.log(loaded.logs().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n'));
    throw err;
  } finally {
    await loaded.stop();
  }
});

test('a result is placed where it was sent, between the prints around it', async () => {
  const code = 'from sluice import result\nfor i in range(20):\n    print("a%d" % i)\n    result({"i": i})\n    print("b%d" % i)';
  for (const mode of ['process', 'kernel'] as const) {
    const r = await runStream(server.url, session(`result-${mode}`), { language: 'python', mode, code });
    const seen: string[] = [];
    for (const e of r.events) {
      if (e.type === 'result') seen.push(`r${JSON.stringify(e.data['application/json'])}`);
      if (e.type === 'stdout') seen.push(...e.content.split('\n').filter((l) => l !== ''));
    }
    const want = Array.from({ length: 20 }, (_, i) => [`a${i}`, `r${JSON.stringify({ i })}`, `b${i}`]).flat();
    assert.deepEqual(seen, want, mode);
  }
});

test('floods of raw lines on the events channel do not starve a neighbour session', async () => {
  // Two flooders write tiny events straight to fd 3, as fast as they can, for a while; their
  // answers are the buffered folds, so this test's own process is not busy reading the floods.
  const floods = [1, 2].map((i) =>
    postJSON(`${server.url}/api/sessions/${session(`flooder-${i}`)}/run`, {
      language: 'python',
      mode: 'process',
      timeout: 120,
      code: 'import os, time\nline = b\'{"type":"progress","percent":1}\\n\' * 2000\nend = time.time() + 6\nn = 0\nwhile time.time() < end:\n    os.write(3, line)\n    n += 2000\nprint(n)',
    }),
  );
  // The neighbour prints a line every 50 ms; we measure the gaps between arrivals at the client.
  const res = await fetch(`${server.url}/api/sessions/${session('neighbour')}/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ language: 'python', mode: 'process', code: 'import time\nfor i in range(80):\n    print(i)\n    time.sleep(0.05)' }),
  });
  const events = await readSSE(res);
  const arrivals = events.filter((e) => e.type === 'stdout').map((e) => e.arrivedAt);
  const gaps = arrivals.slice(1).map((at, i) => at - (arrivals[i] as number));
  const worst = Math.max(...gaps);
  let written = 0;
  for (const flood of floods) {
    const f = (await (await flood).json()) as { exit_code: number; stdout: string; stderr: string };
    assert.equal(f.exit_code, 0, f.stderr);
    written += Number(f.stdout.trim());
  }
  assert.ok(written > 100_000, `the floods wrote ${written} events`);
  // A 50 ms cadence; with whole 2 MiB reads handled at once the neighbour stalled 0.5-1 s.
  console.log(`ℹ neighbour's worst gap ${worst.toFixed(0)} ms while two floods wrote ${written} events`);
  assert.ok(worst < 300, `the neighbour's worst gap between lines was ${worst} ms during floods of ${written} events`);
});
