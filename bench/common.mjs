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
