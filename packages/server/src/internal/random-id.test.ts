import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomID } from './random-id.js';

test('random ids are 32 hex digits, all different, with every one of the 128 bits varying', () => {
  const ids = Array.from({ length: 1000 }, randomID);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(new Set(ids).size, ids.length);
  // No fixed bits (a UUID fixes 6): each bit position is 0 in some ids and 1 in others.
  for (let bit = 0; bit < 128; bit++) {
    const values = new Set(ids.map((id) => (parseInt(id[Math.floor(bit / 4)] ?? '0', 16) >> (3 - (bit % 4))) & 1));
    assert.equal(values.size, 2, `bit ${bit} never varies`);
  }
});
