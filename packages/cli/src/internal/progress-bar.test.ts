import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderProgressBar } from './progress-bar.js';

test('a percent draws a bar of 30 cells and the rounded-down percent, then the message', () => {
  assert.equal(renderProgressBar({ percent: 40, message: 'Loading' }, 80), `[${'#'.repeat(12)}${'-'.repeat(18)}]  40% Loading`);
  assert.equal(renderProgressBar({ percent: 99.9 }, 80), `[${'#'.repeat(30)}]  99%`);
  assert.equal(renderProgressBar({ percent: 0 }, 80), `[${'-'.repeat(30)}]   0%`);
});

test('percent is clamped to 0–100', () => {
  assert.match(renderProgressBar({ percent: 250 }, 80) ?? '', /\] 100%$/);
  assert.match(renderProgressBar({ percent: -3 }, 80) ?? '', /\]   0%$/);
});

test('a message without a percent is shown alone; an event with neither draws nothing', () => {
  assert.equal(renderProgressBar({ message: 'warming up' }, 80), '... warming up');
  assert.equal(renderProgressBar({}, 80), null);
  assert.equal(renderProgressBar({ percent: Number.NaN }, 80), null);
});

test('the line never reaches the last column: long messages are cut with an ellipsis', () => {
  const line = renderProgressBar({ percent: 50, message: 'x'.repeat(200) }, 60) ?? '';
  assert.equal(Array.from(line).length, 59);
  assert.ok(line.endsWith('…'));
  const narrow = renderProgressBar({ percent: 50, message: 'abc' }, 12) ?? '';
  assert.ok(Array.from(narrow).length <= 11, narrow);
  assert.ok(!narrow.includes('['), 'no room for a bar: the percent alone');
});

test('control characters in the message cannot break the line', () => {
  assert.equal(renderProgressBar({ message: 'a\nb\r\u001b[2Jc' }, 80), '... a b  [2Jc');
});
