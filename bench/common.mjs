// Shared by the benchmarks (run.mjs, load.mjs): size knobs from the environment, and a wall
// clock with sub-millisecond resolution comparable with Python's time.time_ns().

/** A positive integer from the environment, or `fallback` when unset. */
export function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

// Both this and time.time_ns() read CLOCK_REALTIME, but Date.now() has 1 ms steps, too coarse
// for a pipe: anchor performance.now() (monotonic, µs) at the instant Date.now() ticks.
let wallOffset = 0;

/** Anchors wallNow(); call once before measuring (median of 5 tick observations). */
export function calibrateClock() {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    const d0 = Date.now();
    let d1 = d0;
    let p = 0;
    while (d1 === d0) {
      p = performance.now();
      d1 = Date.now();
    }
    samples.push(d1 - p);
  }
  samples.sort((a, b) => a - b);
  wallOffset = samples[2];
}

/** Wall-clock milliseconds since the epoch, with µs resolution. */
export const wallNow = () => performance.now() + wallOffset;

/** A performance.now() reading taken earlier, as wall-clock milliseconds. */
export const toWall = (perfMs) => perfMs + wallOffset;

/** Nearest-rank percentile. */
export function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export const median = (v) => pct(v, 50);

/** A duration for a table cell: µs below 1 ms, two decimals below 100 ms. */
export const fmtMs = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 100 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`);
export const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(r < 10 ? 2 : 1)}×` : 'n/a');

/** A text table: the first column left-aligned, the others right-aligned. */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  │  ');
  const sep = widths.map((w) => '─'.repeat(w)).join('──┼──');
  return [line(header), sep, ...rows.map(line)].join('\n');
}
