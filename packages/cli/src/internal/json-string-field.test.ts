import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completedStringField, JSONStringField } from './json-string-field.js';

const ARGS = JSON.stringify({ code: 'print("héllo 😀")\n\tx = "a\\\\b"\nprint(x)', language: 'python' });

test('the field decodes the same whatever the split, escapes and surrogate pairs included', () => {
  const whole = JSON.parse(ARGS) as { code: string };
  for (let size = 1; size <= 7; size++) {
    const f = new JSONStringField('code');
    let out = '';
    for (let i = 0; i < ARGS.length; i += size) {
      const piece = f.push(ARGS.slice(i, i + size));
      // A lone surrogate half would print as U+FFFD.
      const last = piece.charCodeAt(piece.length - 1);
      assert.ok(!(last >= 0xd800 && last <= 0xdbff), `split ${size}: no lone high surrogate`);
      out += piece;
    }
    assert.equal(out, whole.code, `split ${size}`);
    assert.ok(f.done);
  }
});

test('\\u escapes split mid-way wait for their end; text before the key and after the value is ignored', () => {
  const f = new JSONStringField('code');
  assert.equal(f.push('{"language":"py'), '');
  assert.equal(f.push('thon","co'), '');
  assert.equal(f.push('de": "a\\u00'), 'a');
  assert.equal(f.push('e9b"'), 'éb');
  assert.equal(f.push(',"x":"more"}'), '');
  assert.equal(completedStringField(f.raw, 'language'), 'python');
  assert.equal(completedStringField('{"language":"pyt', 'language'), undefined);
});
