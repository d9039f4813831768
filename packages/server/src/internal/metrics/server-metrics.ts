/**
 * The server's Prometheus metrics (docs/operations.md), in a registry of its own per server:
 * several servers in one process (tests) must not share counters. Counters of executions and
 * histograms are fed by {@link ServerMetrics.observeExecution}; gauges and the agent counters
 * are read from the managers' own counts at scrape time, so nothing else has to call in.
 * Every label comes from a closed set (language, mode, reason, transport): never an id.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AGENT_END_REASONS, type AgentEndReason, type DoneReason, type Language, type Mode } from '@sluice/protocol';

/** How a stream's bytes left the server (the `transport` label). */
export const STREAM_TRANSPORTS = ['sse', 'ndjson', 'websocket', 'json'] as const;
export type StreamTransport = (typeof STREAM_TRANSPORTS)[number];

/** What the gauges and the agent counters read when Prometheus scrapes. */
export interface MetricSources {
  sessions(): number;
  kernels(): number;
  agentRuns(): Record<AgentEndReason, number>;
  llmTokens(): { prompt: number; completion: number };
  /** Bytes streams wrote since the last call, per transport (counted at scrape time). */
  drainStreamBytes(): Partial<Record<StreamTransport, number>>;
}

/** One finished execution, as the metrics see it. */
export interface ExecutionFigures {
  language: Language;
  mode: Mode;
  reason: DoneReason;
  /** Null when it never started (cancelled while queued). */
  durationSec: number | null;
  /** Seconds from its start (sandbox launch included) to its first stdout or stderr; null without output. */
  firstOutputSec: number | null;
}

/** Execution durations: from a 10 ms `print` to the one-hour maximum timeout. */
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** First output: a warm kernel answers in a few ms, a fresh sandbox in tens, a JVM in seconds. */
const FIRST_OUTPUT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly executions: Counter<'language' | 'mode' | 'reason'>;
  private readonly duration: Histogram<'language' | 'mode'>;
  private readonly firstOutput: Histogram<'language' | 'mode'>;
  private readonly running = new Set<{ readonly state: string }>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.executions = new Counter({
      name: 'sluice_executions_total',
      help: 'Executions finished, by language, mode and the reason of their done event.',
      labelNames: ['language', 'mode', 'reason'] as const,
      registers,
    });
    this.duration = new Histogram({
      name: 'sluice_execution_duration_seconds',
      help: 'Wall time of executions that ran, from start to done (duration_ms of done).',
      labelNames: ['language', 'mode'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.firstOutput = new Histogram({
      name: 'sluice_first_output_seconds',
      help: 'Time from an execution starting (sandbox or kernel start included) to its first stdout or stderr.',
      labelNames: ['language', 'mode'] as const,
      buckets: FIRST_OUTPUT_BUCKETS,
      registers,
    });
    const streamBytes = new Counter({
      name: 'sluice_stream_bytes_total',
      help: 'Bytes written to clients by event streams and buffered run answers, framing and headers included, by transport.',
      labelNames: ['transport'] as const,
      registers,
      collect() {
        for (const [transport, bytes] of Object.entries(sources.drainStreamBytes())) this.inc({ transport }, bytes);
      },
    });
    for (const transport of STREAM_TRANSPORTS) streamBytes.inc({ transport }, 0);
    new Gauge({
      name: 'sluice_sessions',
      help: 'Sessions that exist now.',
      registers,
      collect() {
        this.set(sources.sessions());
      },
    });
    const running = this.running;
    new Gauge({
      name: 'sluice_running_executions',
      help: 'Executions running now (queued ones excluded).',
      registers,
      collect() {
        let n = 0;
        for (const e of running) if (e.state === 'running') n++;
        this.set(n);
      },
    });
    new Gauge({
      name: 'sluice_kernels',
      help: 'Kernels (long-lived interpreters) up or starting, pre-started ones included.',
      registers,
      collect() {
        this.set(sources.kernels());
      },
    });
    // The agent manager keeps the totals; a collect() that restates them keeps one owner of the count.
    new Counter({
      name: 'sluice_agent_runs_total',
      help: 'Agent runs finished, by the reason of their end event.',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        const runs = sources.agentRuns();
        this.reset();
        for (const reason of AGENT_END_REASONS) this.inc({ reason }, runs[reason]);
      },
    });
    new Counter({
      name: 'sluice_llm_tokens_total',
      help: 'Tokens the model endpoint reported for agent runs that finished, by kind (prompt or completion).',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        const t = sources.llmTokens();
        this.reset();
        this.inc({ kind: 'prompt' }, t.prompt);
        this.inc({ kind: 'completion' }, t.completion);
      },
    });
  }

  /** Counts an execution as live until `ended` is called (for sluice_running_executions). */
  live(execution: { readonly state: string }): void {
    this.running.add(execution);
  }

  /** Records a finished execution (once per execution). */
  ended(execution: { readonly state: string }, f: ExecutionFigures): void {
    this.running.delete(execution);
    this.executions.inc({ language: f.language, mode: f.mode, reason: f.reason });
    if (f.durationSec !== null) this.duration.observe({ language: f.language, mode: f.mode }, f.durationSec);
    if (f.firstOutputSec !== null) this.firstOutput.observe({ language: f.language, mode: f.mode }, f.firstOutputSec);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
