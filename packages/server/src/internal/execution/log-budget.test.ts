import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog } from './event-log.js';
import { LogBudget } from './log-budget.js';

const KiB = 1024;

/** A log counted in `budget`; its name goes to `forgotten` when the budget forgets it. */
function tracked(budget: LogBudget, forgotten: string[], name: string): EventLog {
  const log = new EventLog(1024 * KiB);
  budget.track(log, () => forgotten.push(name));
  return log;
}

function print(log: EventLog, n: number): void {
  for (let i = 0; i < n; i++) log.append({ type: 'stdout', content: 'o'.repeat(900) });
}

function finish(log: EventLog): void {
  log.append({ type: 'done', exit_code: 0, duration: '0.001s', duration_ms: 1, reason: 'exited' });
  log.close();
}

test('running and finished logs together stay within the budget', () => {
  const budget = new LogBudget(64 * KiB);
  const forgotten: string[] = [];
  const logs = Array.from({ length: 5 }, (_, i) => tracked(budget, forgotten, String(i)));
  for (const log of logs) {
    print(log, 30);
    assert.ok(budget.bytes <= 64 * KiB, `${budget.bytes} bytes held`);
  }
  assert.equal(budget.bytes, logs.reduce((n, l) => n + l.bytes, 0), 'the budget counts what the logs hold');
});

test('past the budget, running logs shed superseded progress before any finished log is forgotten', () => {
  const budget = new LogBudget(64 * KiB);
  const forgotten: string[] = [];
  const old = tracked(budget, forgotten, 'old');
  print(old, 20);
  finish(old);
  const flood = tracked(budget, forgotten, 'flood');
  for (let i = 0; i < 5000; i++) flood.append({ type: 'progress', percent: i % 100 });
  assert.deepEqual(forgotten, [], 'the finished log is still there');
  assert.equal(old.evicted.events, 0);
  assert.ok((flood.evicted.types.progress ?? 0) > 0);
  assert.ok(budget.bytes <= 64 * KiB);
});

test('then the oldest finished logs are forgotten, then running output goes, the largest log first', () => {
  const budget = new LogBudget(64 * KiB);
  const forgotten: string[] = [];
  const first = tracked(budget, forgotten, 'first');
  print(first, 20);
  finish(first);
  const second = tracked(budget, forgotten, 'second');
  print(second, 20);
  finish(second);
  const small = tracked(budget, forgotten, 'small');
  print(small, 5);
  const big = tracked(budget, forgotten, 'big');
  print(big, 45);
  assert.deepEqual(forgotten, ['first', 'second'], 'oldest finished first');
  assert.equal(small.evicted.events, 0);
  print(big, 40);
  assert.ok(budget.bytes <= 64 * KiB);
  assert.ok((big.evicted.types.stdout ?? 0) > 0, 'the largest running log sheds its output');
  assert.equal(small.evicted.events, 0, 'the smaller one keeps its output');
  assert.ok(big.evicted.stdout_bytes > 0);
});

test('a log released for retention stops counting', () => {
  const budget = new LogBudget(1024 * KiB);
  const forgotten: string[] = [];
  const log = tracked(budget, forgotten, 'log');
  print(log, 10);
  finish(log);
  log.release();
  assert.equal(budget.bytes, 0);
  assert.deepEqual(forgotten, ['log']);
});
