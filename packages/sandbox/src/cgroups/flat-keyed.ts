/**
 * Parsers for cgroup control-file formats (kernel Documentation/admin-guide/cgroup-v2.rst,
 * "Interface Files"): flat-keyed files (`key value` per line: memory.events, cpu.stat,
 * pids.events, v1 memory.oom_control) and single values where `max` (v2) or a huge number /
 * `-1` (v1) mean "no limit".
 */

/** `key value` lines into a map of integers; lines whose value is not an integer are skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+(-?\d+)\s*$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** One pattern per key asked for (a handful): its line, as parseFlatKeyed reads lines. */
const keyLines = new Map<string, RegExp>();

/**
 * The integer value of `key` in a flat-keyed file's text, or undefined if absent: what
 * parseFlatKeyed(text).get(key) gives, without splitting the text into a map (a warm kernel
 * cell reads its OOM count this way twice).
 */
export function flatKeyedValue(text: string, key: string): number | undefined {
  let re = keyLines.get(key);
  if (!re) {
    // Whitespace but not a newline: a match stays within one line. The last line of that key
    // wins, as in the map.
    re = new RegExp(`^[^\\S\\n]*${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\S\\n]+(-?\\d+)[^\\S\\n]*$`, 'gm');
    keyLines.set(key, re);
  }
  let value: number | undefined;
  for (const m of text.matchAll(re)) value = Number(m[1]);
  return value;
}

/** Above this, a v1 byte limit means "unlimited" (the kernel's default is PAGE_COUNTER_MAX pages ≈ 2^63). */
const V1_UNLIMITED_BYTES = 2 ** 60;

/**
 * A single-value limit file (`pids.max`, `memory.max`, `memory.limit_in_bytes`,
 * `cpu.cfs_quota_us`): the number, or null for "no limit" (`max`, `-1`, or a v1 byte count
 * near 2^63). Throws on text that is none of these.
 */
export function parseLimitValue(text: string): number | null {
  const t = text.trim();
  if (t === 'max' || t === '-1') return null;
  if (!/^\d+$/.test(t)) throw new SyntaxError(`not a cgroup limit value: ${JSON.stringify(t)}`);
  const n = Number(t);
  return n >= V1_UNLIMITED_BYTES ? null : n;
}

/** v2 `cpu.max` (`$MAX $PERIOD`): the quota as a fraction of one CPU, or null for `max`. */
export function parseCPUMax(text: string): number | null {
  const [max, period] = text.trim().split(/\s+/);
  if (max === 'max') return null;
  const q = Number(max);
  const p = Number(period ?? '100000');
  if (!Number.isFinite(q) || !Number.isFinite(p) || p <= 0) throw new SyntaxError(`not a cpu.max value: ${JSON.stringify(text.trim())}`);
  return q / p;
}

/** A file holding one non-negative integer (`cpuacct.usage`, `memory.peak`, `pids.current`). */
export function parseCount(text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new SyntaxError(`not a counter value: ${JSON.stringify(t)}`);
  return Number(t);
}

/** The pids listed in a `cgroup.procs` file. */
export function parsePIDList(text: string): number[] {
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (/^\d+$/.test(t)) pids.push(Number(t));
  }
  return pids;
}
