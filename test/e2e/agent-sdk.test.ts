/**
 * The SDK's agent examples (the A3S Code tutorial loops) and `sluice agent` end to end: a real
 * server with real sandboxes, its model a scripted OpenAI-compatible endpoint on loopback. The
 * examples print what their loops print; the CLI frames the tool call with the code and its
 * live output, exits 0 / 3 (max_turns) / 130 (Ctrl-C, cancelled on the server), and --json is
 * one event per line, `end` last.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Sluice } from '@sluice/sdk';
import { waitFor } from './helpers/host.js';
import { CLI, REPO_ROOT, startServer, type TestServer } from './helpers/server.js';
import { assertScriptUsed, startScriptedLLM, textReply, toolCallReply, type ScriptedLLM } from './helpers/scripted-llm.js';

const EXAMPLES = join(REPO_ROOT, 'packages/sdk/dist/examples/agent');

let llm: ScriptedLLM;
let server: TestServer;
before(async () => {
  llm = await startScriptedLLM();
  server = await startServer({ SLUICE_LLM_BASE_URL: llm.baseURL, SLUICE_LLM_API_KEY: 'sk-test-agent-sdk', SLUICE_LLM_MODEL: 'scripted-model' });
});
after(async () => {
  await server.stop();
  await llm.close();
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SLUICE_URL: server.url, ...extra };
}

async function example(name: string, extra: Record<string, string> = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(EXAMPLES, `${name}.js`)], { env: env(extra), timeout: 60_000 });
  return stdout;
}

interface CLIResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sluice agent …`; `onStdout` sees the output so far and may signal the child. */
function cli(args: string[], onStdout?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<CLIResult> {
  const child = spawn(process.execPath, [CLI, 'agent', ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => {
    stdout += t;
    onStdout?.(stdout, (s) => child.kill(s));
  });
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(deadline);
      resolve({ code, stdout, stderr });
    }),
  );
}

test('basic streaming: the model\'s text, as it streamed', async () => {
  llm.push(textReply('Async/await in Rust compiles to state machines.'));
  assert.equal(await example('basic-streaming'), 'Async/await in Rust compiles to state machines.');
  assertScriptUsed(llm);
});

test('chat UI: the switch sees text, tool start and end with exit code 0, and end with the tokens', async () => {
  llm.push(toolCallReply('run_code', { code: 'print(6 * 7)', language: 'python' }, { text: 'Checking. ' }), textReply('It is 42.'));
  const out = await example('chat-ui');
  assert.match(out, /^Checking\. \n\[run_code running\]\n\[run_code done\]\nIt is 42\.\n\[complete: \d+ tokens\]\n\d+ events\n$/);
  assert.doesNotMatch(out, /failed/);
  assertScriptUsed(llm);
});

test('tool progress: the code\'s output arrives as tool_output_delta between tool_start and tool_end', async () => {
  llm.push(toolCallReply('run_code', { code: 'print("alpha")\nprint("beta")', language: 'python' }), textReply('Both printed.'));
  const out = await example('tool-progress');
  assert.match(out, /\[tool\] Starting: run_code\n\[run_code\] alpha\n[\s\S]*beta[\s\S]*\[tool\] Done: run_code \(exit: 0\)\nBoth printed\.$/);
  assertScriptUsed(llm);
});

test('cancellation: stream.cancel() from a timer ends the run cancelled', async () => {
  llm.push(toolCallReply('run_code', { code: 'import time\nwhile True:\n    time.sleep(0.05)', language: 'python' }));
  const out = await example('cancellation', { CANCEL_AFTER_MS: '1500' });
  assert.match(out, /\[end: cancelled\]\n$/);
});

test('sluice agent frames the tool call (code, live output, exit) in plain ASCII off a terminal, usage on stderr, exit 0', async () => {
  llm.push(toolCallReply('run_code', { code: 'print(6 * 7)', language: 'python' }, { text: 'Let me check.' }), textReply('It is 42.'));
  const r = await cli(['What is 6*7?']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Let me check.\n+- run_code (python) -\n| print(6 * 7)\n+- output -\n| 42\n+- exit 0 -\nIt is 42.\n');
  assert.match(r.stderr, /^sluice: completed: 2 turns, \d+ tokens \(\d+ prompt, \d+ completion\)\n$/);
  assertScriptUsed(llm);
});

test('sluice agent --json prints one event per line, seq 1..n, end last', async () => {
  llm.push(textReply('Hello.'));
  const r = await cli(['hi', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; seq: number; text?: string });
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
  );
  assert.equal(events[0]?.type, 'agent_start');
  assert.equal(events.at(-1)?.type, 'end');
  assert.equal(events.at(-1)?.text, 'Hello.');
  // The wire's spelling, as docs/agents.md and the HTTP stream have it.
  assert.ok('run_id' in (events[0] ?? {}), JSON.stringify(events[0]));
  assert.ok('total_tokens' in (events.at(-1) ?? {}));
});

test('sluice agent --max-turns 1 stops after the tool call and exits 3', async () => {
  llm.push(toolCallReply('run_code', { code: 'print(1)', language: 'python' }));
  const r = await cli(['count', '--max-turns', '1']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /sluice: max_turns: 1 turn/);
});

test('Ctrl-C cancels the run on the server while its code runs, prints the cancelled end and exits 130', async () => {
  llm.push(toolCallReply('run_code', { code: 'import time\nprint("tick")\nwhile True:\n    time.sleep(0.05)', language: 'python' }));
  let sent = false;
  const r = await cli(['loop forever'], (out, kill) => {
    if (!sent && out.includes('| tick')) {
      sent = true;
      kill('SIGINT');
    }
  });
  assert.ok(sent, `the code's output arrived: ${r.stdout}`);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stdout, /\+- cancelled/);
  assert.match(r.stderr, /cancelling the agent run[\s\S]*sluice: cancelled:/);
});

test('the SDK on the real server: the fold, attach from a seq, the run\'s view, and break cancelling the run', async () => {
  const sluice = new Sluice({ baseURL: server.url });
  const session = await sluice.sessions.create();
  llm.push(toolCallReply('run_code', { code: 'print(6 * 7)', language: 'python' }), textReply('It is 42.'));
  const stream = session.agent.stream('What is 6*7?', { maxTurns: 3, tools: ['run_code'] });
  const seqs: number[] = [];
  for await (const ev of stream) seqs.push(ev.seq);
  const result = await stream.result();
  assert.equal(result.reason, 'completed');
  assert.equal(result.text, 'It is 42.');
  assert.equal(result.toolCalls[0]?.toolOutput.includes('42'), true);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
  );
  const runId = await stream.runId;
  const tail: number[] = [];
  for await (const ev of session.agent.attach(runId, { from: 3 })) tail.push(ev.seq);
  assert.deepEqual(tail, seqs.slice(2));
  const info = await session.agent.get(runId);
  assert.equal(info.state, 'finished');
  assert.equal(info.text, 'It is 42.');
  assert.equal(info.lastSeq, seqs.length);

  llm.push(toolCallReply('run_code', { code: 'import time\nprint("tick")\nwhile True:\n    time.sleep(0.05)', language: 'python' }));
  const looping = session.agent.stream('loop');
  for await (const ev of looping) if (ev.type === 'tool_output_delta') break;
  const id = await looping.runId;
  const view = await waitFor('the run to end after break', 20_000, async () => {
    const v = await session.agent.get(id);
    return v.state === 'finished' ? v : undefined;
  });
  assert.equal(view.reason, 'cancelled');
  await session.delete();
  sluice.close();
});
