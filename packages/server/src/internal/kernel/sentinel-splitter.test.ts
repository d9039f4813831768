import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SentinelSplitter } from './sentinel-splitter.js';

const NONCE = '0123456789abcdef0123456789abcdef';
const MARK = `\x1esluice:${NONCE}\x1e`;

test('bytes before the marker are the cell\'s, bytes after it are dropped', () => {
  const s = new SentinelSplitter();
  s.expect(NONCE);
  assert.equal(s.push(Buffer.from(`hello\n${MARK}late`)).toString(), 'hello\n');
  assert.equal(s.seen, true);
  assert.equal(s.dropped, 4);
  assert.equal(s.push(Buffer.from('more')).length, 0);
  assert.equal(s.dropped, 8);
});

test('a marker cut at every possible point is still found, and nothing of it leaks', () => {
  const text = `abc\x1edef${MARK}`;
  for (let cut = 0; cut <= text.length; cut++) {
    const s = new SentinelSplitter();
    s.expect(NONCE);
    const got = Buffer.concat([s.push(Buffer.from(text.slice(0, cut), 'latin1')), s.push(Buffer.from(text.slice(cut), 'latin1'))]);
    assert.equal(got.toString('latin1'), 'abc\x1edef', `cut at ${cut}`);
    assert.equal(s.seen, true, `cut at ${cut}`);
  }
});

test('byte by byte, output is delayed only while it could be the marker', () => {
  const s = new SentinelSplitter();
  s.expect(NONCE);
  let out = '';
  for (const ch of `x\x1esluice:nope\x1ey${MARK}`) out += s.push(Buffer.from(ch, 'latin1')).toString('latin1');
  assert.equal(out, 'x\x1esluice:nope\x1ey');
  assert.equal(s.seen, true);
});

test('another cell\'s marker is ordinary output', () => {
  const s = new SentinelSplitter();
  s.expect(NONCE);
  const other = `\x1esluice:${'f'.repeat(32)}\x1e`;
  // Its last byte could start our marker: held until the next chunk shows it does not.
  const out = s.push(Buffer.from(other, 'latin1')).toString('latin1') + s.push(Buffer.from('z')).toString('latin1');
  assert.equal(out, `${other}z`);
  assert.equal(s.seen, false);
});

test('nothing is listening before the first cell: output is dropped and counted', () => {
  const s = new SentinelSplitter();
  assert.equal(s.push(Buffer.from('stray')).length, 0);
  assert.equal(s.dropped, 5);
});

test('flushHeld gives back a held partial marker when the kernel dies', () => {
  const s = new SentinelSplitter();
  s.expect(NONCE);
  assert.equal(s.push(Buffer.from('ok\x1esl', 'latin1')).toString('latin1'), 'ok');
  assert.equal(s.flushHeld().toString('latin1'), '\x1esl');
});
