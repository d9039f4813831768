/** The language a file is written in, from its extension or else its `#!` line. */
import { basename, extname } from 'node:path';
import type { Language } from '@sluice/protocol';

const EXTENSIONS: Record<string, Language> = {
  '.py': 'python',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.sh': 'bash',
  '.bash': 'bash',
  '.r': 'r',
  '.java': 'java',
};

/** Interpreters a `#!` line may name (`#!/usr/bin/env python3`, `#!/bin/bash`). */
const INTERPRETERS: [RegExp, Language][] = [
  [/^python[0-9.]*$/, 'python'],
  [/^(node|nodejs)$/, 'javascript'],
  [/^(tsx|ts-node)$/, 'typescript'],
  [/^(bash|sh|dash)$/, 'bash'],
  [/^Rscript$/, 'r'],
  [/^java$/, 'java'],
];

/** The language `file`'s extension implies, else the one its first line's `#!` names, if any. */
export function languageForFile(file: string, code = ''): Language | undefined {
  const byExtension = EXTENSIONS[extname(file).toLowerCase()];
  if (byExtension !== undefined) return byExtension;
  const shebang = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(code);
  if (!shebang?.[1]) return undefined;
  // `#!/usr/bin/env python3`: the interpreter is env's argument.
  const program = basename(shebang[1]) === 'env' ? shebang[2] : basename(shebang[1]);
  if (program === undefined) return undefined;
  return INTERPRETERS.find(([re]) => re.test(program))?.[1];
}
