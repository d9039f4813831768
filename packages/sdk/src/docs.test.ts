// docs/sdk.md and the README quote the example programs (packages/sdk/examples/*.ts,
// type-checked by the build and run against a real server in test/e2e/sdk.test.ts): their code
// blocks must equal them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const docURL = new URL('../../../docs/sdk.md', import.meta.url);
const readmeURL = new URL('../../../README.md', import.meta.url);
const examplesURL = new URL('../examples/', import.meta.url);

/** Each `<!-- example: NAME -->` marker and the fenced block right after it. */
function quotedExamples(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /<!-- example: ([\w./-]+) -->\n```ts\n([\s\S]*?)```/g;
  for (const m of markdown.matchAll(re)) out.set(m[1] ?? '', m[2] ?? '');
  return out;
}

test('every code block that docs/sdk.md marks as an example is that example file, byte for byte', () => {
  const quoted = quotedExamples(readFileSync(docURL, 'utf8'));
  assert.ok(quoted.size > 0, 'the doc quotes examples');
  for (const [name, block] of quoted) {
    const file = readFileSync(new URL(name, examplesURL), 'utf8');
    assert.equal(block, file, `docs/sdk.md's block for ${name} differs from packages/sdk/examples/${name}`);
  }
});

test('the README\'s SDK example is examples/readme.ts, byte for byte', () => {
  const quoted = quotedExamples(readFileSync(readmeURL, 'utf8'));
  assert.deepEqual([...quoted.keys()], ['readme.ts']);
  assert.equal(quoted.get('readme.ts'), readFileSync(new URL('readme.ts', examplesURL), 'utf8'));
});

test('every example file is quoted in docs/sdk.md (the README\'s in the README)', () => {
  const quoted = quotedExamples(readFileSync(docURL, 'utf8'));
  const files = readdirSync(examplesURL).filter((f) => f.endsWith('.ts') && f !== 'readme.ts');
  for (const f of files) assert.ok(quoted.has(f), `docs/sdk.md does not quote examples/${f}`);
});
