import { test } from 'node:test';
import assert from 'node:assert/strict';
import { languageForFile } from './language-for-file.js';

test('the extension names the language, in any case', () => {
  assert.equal(languageForFile('a/b/job.py'), 'python');
  assert.equal(languageForFile('x.MJS'), 'javascript');
  assert.equal(languageForFile('run.sh'), 'bash');
  assert.equal(languageForFile('stats.R'), 'r');
  assert.equal(languageForFile('Main.java'), 'java');
  assert.equal(languageForFile('t.ts'), 'typescript');
});

test('without a known extension, the #! line names it (directly or through env)', () => {
  assert.equal(languageForFile('script', '#!/usr/bin/env python3\nprint(1)\n'), 'python');
  assert.equal(languageForFile('script', '#!/bin/bash -e\necho hi\n'), 'bash');
  assert.equal(languageForFile('tool', '#! /usr/bin/node\n'), 'javascript');
  assert.equal(languageForFile('tool.txt', '#!/usr/bin/env Rscript\n'), 'r');
});

test('nothing recognisable: undefined (the server default applies)', () => {
  assert.equal(languageForFile('notes.txt', 'print(1)'), undefined);
  assert.equal(languageForFile('script', '#!/usr/bin/env\n'), undefined);
  assert.equal(languageForFile('script', '#!/usr/bin/perl\n'), undefined);
  assert.equal(languageForFile('-'), undefined);
});
