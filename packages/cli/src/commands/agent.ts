/**
 * `sluice agent "PROMPT"`: runs an agent in a session and streams it live: the model's text on
 * stdout, each tool call as a framed block with its code and live output (agent-renderer.ts),
 * the usage on stderr at the end; `--json` prints the events as NDJSON instead. Ctrl-C cancels
 * the run on the server and exits 130 once its `end` arrived (a second Ctrl-C exits at once).
 * Without `--session` it runs in a fresh session that is deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import { AGENT_TOOLS, type AgentEndReason, type AgentTool } from '@sluice/protocol';
import { toWireAgentEvent, type AgentStream, type Session } from '@sluice/sdk';
import { exitCodeForAgentEnd } from '../internal/agent-exit-code.js';
import { AgentRenderer, wantsFancy, type Write } from '../internal/agent-renderer.js';
import { clientAction } from '../internal/client-action.js';
import { connect, serverURL, withServerOption, type ConnectFlags } from '../internal/connect.js';
import { ExitCode } from '../internal/exit-codes.js';
import { reportError } from '../internal/report-error.js';
import { parseSeconds } from '../internal/run-flags.js';
import { Terminal } from '../internal/terminal.js';

interface AgentFlags extends ConnectFlags {
  session?: string;
  model?: string;
  maxTurns?: number;
  tools?: AgentTool[];
  language?: string;
  system?: string;
  timeout?: number;
  json?: boolean;
}

/** Seconds an ephemeral session lives once idle (see execute.ts). */
const EPHEMERAL_IDLE_TTL = 60;
const CLEANUP_DEADLINE_MS = 5000;
const STOP_SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

export function agentCommand(program: Command): void {
  withServerOption(
    program
      .command('agent')
      .description('run an AI agent that writes and runs code in a sandbox, streaming its answer and its tool calls live (exit 0: it answered)')
      .argument('<prompt>', 'what to ask the model')
      .option('-s, --session <id>', 'run in this session and continue its conversation (created if needed, kept); default: a fresh one, deleted afterwards')
      .option('-m, --model <model>', 'one of the server\'s allowed models (default: the server\'s)')
      .option('--max-turns <n>', 'model calls at most (default 10)', parseTurns)
      .option('--tools <list>', `tools the model may call, comma-separated (default all: ${AGENT_TOOLS.join(',')})`, parseTools)
      .option('-l, --language <language>', 'language of run_code when the model names none (default: the session\'s)')
      .option('--system <prompt>', 'system prompt of a new conversation')
      .option('-t, --timeout <seconds>', 'seconds each run_code may take', parseSeconds)
      .option('--json', 'print the events as NDJSON on stdout (one per line, as the wire carries them: docs/agents.md)'),
  ).action((prompt: string, flags: AgentFlags) => clientAction(flags, () => runAgent(prompt, flags)));
}

async function runAgent(prompt: string, flags: AgentFlags): Promise<number> {
  const sluice = await connect(flags);
  const url = serverURL(flags);
  const json = flags.json === true;
  const term = new Terminal(process.stdout, process.stderr, { progressBar: false });
  const beforeStart = new AbortController();
  // Aborted only when following the run must stop without its `end` (the cancel could not be sent).
  const giveUp = new AbortController();
  let stream: AgentStream | undefined;
  let received: StopSignal | undefined;

  const onSignal = (signal: StopSignal): void => {
    if (received !== undefined) process.exit(128 + STOP_SIGNALS[signal]);
    received = signal;
    if (stream === undefined) {
      beforeStart.abort();
      return;
    }
    void term.note(`cancelling the agent run… (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to quit at once)`);
    stream.cancel().catch(() => giveUp.abort());
  };
  const offs = Object.keys(STOP_SIGNALS).map((name) => {
    const handler = (): void => onSignal(name as StopSignal);
    process.on(name, handler);
    return () => process.off(name, handler);
  });

  let session: Session | undefined;
  const ephemeral = flags.session === undefined;
  try {
    session =
      flags.session === undefined
        ? await sluice.sessions.create({ id: `cli-agent-${randomBytes(8).toString('hex')}`, language: flags.language, idleTTL: EPHEMERAL_IDLE_TTL, signal: beforeStart.signal })
        : sluice.session(flags.session);
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    // For the frames' headers: the language run_code uses when the model names none.
    if (session.settings === undefined && flags.language === undefined) await session.refresh({ signal: beforeStart.signal }).catch(() => undefined);
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    const renderer = new AgentRenderer({ fancy: wantsFancy(process.stdout, process.env), language: flags.language ?? session.settings?.language });
    stream = session.agent.stream(prompt, {
      model: flags.model,
      maxTurns: flags.maxTurns,
      tools: flags.tools,
      language: flags.language,
      system: flags.system,
      timeout: flags.timeout,
      signal: giveUp.signal,
    });
    let reason: AgentEndReason | undefined;
    let errorCode: string | undefined;
    for await (const ev of stream) {
      if (json) await term.stdout(`${JSON.stringify(toWireAgentEvent(ev))}\n`);
      else await perform(term, renderer.render(ev));
      if (ev.type === 'error') errorCode = ev.code;
      if (ev.type === 'end') reason = ev.reason;
      // Nobody reads our output any more: leaving the loop cancels the run (SDK).
      if (term.failure !== undefined) break;
    }
    if (term.failure !== undefined) return term.failure === 'broken_pipe' ? ExitCode.BROKEN_PIPE : ExitCode.IO;
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    if (reason === undefined) return reportError(new Error('the stream ended without end'), url);
    return exitCodeForAgentEnd(reason, errorCode);
  } catch (err: unknown) {
    if (term.failure !== undefined) return term.failure === 'broken_pipe' ? ExitCode.BROKEN_PIPE : ExitCode.IO;
    if (received !== undefined) return 128 + STOP_SIGNALS[received];
    return reportError(err, url);
  } finally {
    term.dispose();
    for (const off of offs) off();
    if (ephemeral && session !== undefined) await session.delete({ signal: AbortSignal.timeout(CLEANUP_DEADLINE_MS) }).catch(() => {});
    sluice.close();
  }
}

/** Performs the renderer's writes in order, each honouring backpressure. */
async function perform(term: Terminal, writes: readonly Write[]): Promise<void> {
  for (const w of writes) await (w.to === 'stdout' ? term.stdout(w.text) : term.stderr(w.text));
}

function parseTurns(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number of model calls >= 1, got ${JSON.stringify(value)}`);
  return n;
}

function parseTools(value: string): AgentTool[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = names.filter((n) => !(AGENT_TOOLS as readonly string[]).includes(n));
  if (names.length === 0 || bad.length > 0) throw new InvalidArgumentError(`expected a comma-separated list of ${AGENT_TOOLS.join(', ')}, got ${JSON.stringify(value)}`);
  return [...new Set(names)] as AgentTool[];
}
