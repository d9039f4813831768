import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wantsHTML } from './wants-html.js';

test('browsers get the page: Chromium and Firefox navigation Accept headers', () => {
  assert.equal(wantsHTML('text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'), true);
  assert.equal(wantsHTML('text/html'), true);
  assert.equal(wantsHTML('application/xhtml+xml'), true);
});

test('clients without text/html keep the JSON: none, */*, application/json, fetch defaults', () => {
  assert.equal(wantsHTML(undefined), false);
  assert.equal(wantsHTML(''), false);
  assert.equal(wantsHTML('*/*'), false);
  assert.equal(wantsHTML('application/json'), false);
  assert.equal(wantsHTML('application/json, text/plain, */*'), false);
});

test('q-values decide: JSON preferred or HTML refused keeps the JSON', () => {
  assert.equal(wantsHTML('application/json, text/html;q=0.5'), false);
  assert.equal(wantsHTML('text/html;q=0'), false);
  assert.equal(wantsHTML('text/html;q=0.9, application/json;q=0.9'), true);
});
