import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkspacePath } from './workspace-path.js';

test('plain relative paths are split into segments, "." and empty segments dropped', () => {
  assert.deepEqual(parseWorkspacePath('a/b.txt'), { ok: true, value: ['a', 'b.txt'] });
  assert.deepEqual(parseWorkspacePath('./a//b/'), { ok: true, value: ['a', 'b'] });
  assert.deepEqual(parseWorkspacePath(''), { ok: true, value: [] });
  assert.deepEqual(parseWorkspacePath('..a/b..'), { ok: true, value: ['..a', 'b..'] });
});

test('every way out of the workspace is refused with a message that says why', () => {
  const cases: [string, RegExp][] = [
    ['../../etc/passwd', /"\.\." would leave the workspace/],
    ['a/../../x', /"\.\." would leave/],
    ['a/..', /"\.\." would leave/],
    ['/etc/passwd', /it is absolute/],
    ['a\0b', /NUL byte/],
    ['a\\..\\b', /backslashes/],
    ['a\nb', /control character/],
    ['x'.repeat(5000), /longer than 4096 bytes/],
    [`${'n'.repeat(256)}/f`, /longer than 255 bytes/],
  ];
  for (const [raw, why] of cases) {
    const r = parseWorkspacePath(raw);
    assert.equal(r.ok, false, raw);
    if (!r.ok) {
      assert.equal(r.code, 'INVALID_REQUEST');
      assert.match(r.message, /^path: expected a path inside \/workspace/);
      assert.match(r.message, why);
    }
  }
});

test('look-alike characters stay plain names and cannot become ".."', () => {
  // Fullwidth full stops (U+FF0E) and the division slash (U+2215) are ordinary name characters.
  assert.deepEqual(parseWorkspacePath('\uFF0E\uFF0E\u2215etc'), { ok: true, value: ['\uFF0E\uFF0E\u2215etc'] });
});
