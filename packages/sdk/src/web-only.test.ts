// The SDK runs in browsers too: its source (tests aside) may use web-standard APIs only. The
// browser bundle's build (esbuild, platform "browser") and test/e2e/sdk-browser.test.ts check
// the same from the other side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const srcDir = fileURLToPath(new URL('../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [p] : [];
  });
}

test('no SDK source file uses a Node-only API', () => {
  const files = sources(srcDir);
  assert.ok(files.length > 10);
  const forbidden = [/from\s+['"]node:/, /\brequire\(/, /\bBuffer\b/, /\bprocess\./, /\b__dirname\b/, /\bNodeJS\./];
  for (const file of files) {
    const code = readFileSync(file, 'utf8');
    for (const re of forbidden) assert.doesNotMatch(code, re, `${file} uses ${re}`);
  }
});
