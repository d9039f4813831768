import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flatKeyedValue, parseCPUMax, parseCount, parseFlatKeyed, parseLimitValue, parsePIDList } from './flat-keyed.js';

test('v1 memory.oom_control gives oom_kill', () => {
  const text = 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n';
  assert.equal(flatKeyedValue(text, 'oom_kill'), 3);
  assert.equal(flatKeyedValue(text, 'oom_kill_disable'), 0);
});

test('an old kernel without the oom_kill line gives undefined, not 0', () => {
  assert.equal(flatKeyedValue('oom_kill_disable 0\nunder_oom 0\n', 'oom_kill'), undefined);
});

test('v2 memory.events and cpu.stat are flat-keyed', () => {
  const events = 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n';
  assert.equal(flatKeyedValue(events, 'oom_kill'), 1);
  assert.equal(flatKeyedValue(events, 'max'), 12);
  const stat = 'usage_usec 376152\nuser_usec 370000\nsystem_usec 6152\nnr_periods 16\nnr_throttled 14\nthrottled_usec 1122334\n';
  assert.deepEqual([...parseFlatKeyed(stat).entries()].slice(0, 2), [['usage_usec', 376152], ['user_usec', 370000]]);
});

test('pids.events with max.imposed (newer kernels) keeps both keys distinct', () => {
  const m = parseFlatKeyed('max 59379\nmax.imposed 2\n');
  assert.equal(m.get('max'), 59379);
  assert.equal(m.get('max.imposed'), 2);
});

test('limit values: max, -1 and the v1 unlimited byte count are null', () => {
  assert.equal(parseLimitValue('max\n'), null);
  assert.equal(parseLimitValue('-1\n'), null);
  assert.equal(parseLimitValue('9223372036854771712\n'), null);
  assert.equal(parseLimitValue('134217728\n'), 134217728);
  assert.equal(parseLimitValue('64'), 64);
  assert.throws(() => parseLimitValue('lots'), SyntaxError);
});

test('cpu.max is a fraction of a CPU', () => {
  assert.equal(parseCPUMax('max 100000\n'), null);
  assert.equal(parseCPUMax('25000 100000\n'), 0.25);
  assert.equal(parseCPUMax('200000 100000'), 2);
  assert.throws(() => parseCPUMax('x y'), SyntaxError);
});

test('counters and pid lists', () => {
  assert.equal(parseCount('781234567\n'), 781234567);
  assert.throws(() => parseCount(''), SyntaxError);
  assert.deepEqual(parsePIDList('12\n345\n\n'), [12, 345]);
  assert.deepEqual(parsePIDList(''), []);
});

test('flatKeyedValue gives what the parsed map gives, line by line', () => {
  const texts = [
    'max 1\nmax.imposed 2\n',
    '  oom_kill   5  \n',
    'oom_kill 1\noom_kill 2\n',
    'oom_kill\n5\n',
    'oom_kill x\noom 4\n',
    'oom_kill 3\r\nunder_oom 0\r\n',
    'xoom_kill 9\noom_kill_disable 1\n',
    'oom_kill -2',
    '',
  ];
  for (const text of texts) {
    for (const key of ['oom_kill', 'max', 'max.imposed', 'oom', 'under_oom']) {
      assert.equal(flatKeyedValue(text, key), parseFlatKeyed(text).get(key), `${JSON.stringify(text)} ${key}`);
    }
  }
  // A key's dot is a dot, not "any character".
  assert.equal(flatKeyedValue('maxXimposed 7\n', 'max.imposed'), undefined);
});
