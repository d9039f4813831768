import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchCPUBudget } from './cpu-budget.js';

/** Waits until `pred` holds (or 5 s pass): timers may run late on a loaded machine. */
async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !pred(); i++) await sleep(10);
}

function counter(stepNs: number): { cpuUsageNs(): Promise<number>; reads: number } {
  const s = {
    reads: 0,
    async cpuUsageNs(): Promise<number> {
      s.reads++;
      return s.reads * stepNs;
    },
  };
  return s;
}

test('calls onExceeded once when usage reaches the budget, then stops polling', async () => {
  const src = counter(100);
  const seen: number[] = [];
  const watch = watchCPUBudget(src, { budgetNs: 300, intervalMs: 2, onExceeded: (ns) => seen.push(ns) });
  await until(() => watch.exceeded);
  await sleep(20);
  assert.deepEqual(seen, [300]);
  assert.equal(watch.exceeded, true);
  assert.equal(src.reads, 3);
});

test('an abort stops the watch before the budget is reached', async () => {
  const src = counter(1);
  const ac = new AbortController();
  const watch = watchCPUBudget(src, { budgetNs: 1e9, intervalMs: 2, signal: ac.signal, onExceeded: () => assert.fail('not exceeded') });
  await sleep(20);
  ac.abort();
  const reads = src.reads;
  await sleep(20);
  assert.ok(src.reads <= reads + 1, 'no polling after abort');
  assert.equal(watch.exceeded, false);
});

test('read errors are reported and polling goes on; undefined usage never trips the budget', async () => {
  let n = 0;
  const errors: unknown[] = [];
  const watch = watchCPUBudget(
    {
      async cpuUsageNs() {
        n++;
        if (n === 1) throw new Error('EBUSY');
        return n < 4 ? undefined : 10;
      },
    },
    { budgetNs: 5, intervalMs: 2, onExceeded: () => {}, onError: (e) => errors.push(e) },
  );
  await until(() => watch.exceeded);
  assert.equal(errors.length, 1);
  assert.equal(watch.exceeded, true);
  watch.stop();
});

test('a watch on an already aborted signal never polls; bad options are refused', async () => {
  const src = counter(1);
  const ac = new AbortController();
  ac.abort();
  watchCPUBudget(src, { budgetNs: 1, intervalMs: 1, signal: ac.signal, onExceeded: () => assert.fail('aborted') });
  await sleep(10);
  assert.equal(src.reads, 0);
  assert.throws(() => watchCPUBudget(src, { budgetNs: 0, onExceeded: () => {} }), /budgetNs must be a positive number/);
  assert.throws(() => watchCPUBudget(src, { budgetNs: 1, intervalMs: -1, onExceeded: () => {} }), /intervalMs/);
});
