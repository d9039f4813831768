/**
 * CodeMirror highlighting for each language of the contract, and a first program for each.
 * R and shell come from CodeMirror's legacy stream modes; the others have full parsers.
 */
import { java } from '@codemirror/lang-java';
import { javascript } from '@codemirror/lang-javascript';
import { python } from '@codemirror/lang-python';
import { StreamLanguage } from '@codemirror/language';
import { r } from '@codemirror/legacy-modes/mode/r';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import type { Extension } from '@codemirror/state';
import type { Language } from '@sluice/sdk';
import { assertNever } from '../assert-never.js';

const KNOWN: readonly Language[] = ['python', 'javascript', 'typescript', 'bash', 'r', 'java'];

/** Narrows a language name from the server to one this page knows. */
export function isKnownLanguage(name: string): name is Language {
  return (KNOWN as readonly string[]).includes(name);
}

/** The editor extension that highlights `language`. */
export function languageSupport(language: Language): Extension {
  switch (language) {
    case 'python':
      return python();
    case 'javascript':
      return javascript();
    case 'typescript':
      return javascript({ typescript: true });
    case 'java':
      return java();
    case 'bash':
      return StreamLanguage.define(shell);
    case 'r':
      return StreamLanguage.define(r);
    default:
      return assertNever(language, 'language');
  }
}

/** A short program to start from in `language`. */
export function sampleCode(language: Language): string {
  switch (language) {
    case 'python':
      return 'import time\nfor i in range(3):\n    print(f"line {i}", flush=True)\n    time.sleep(0.5)\n';
    case 'javascript':
      return 'for (let i = 0; i < 3; i++) {\n  console.log(`line ${i}`);\n  await new Promise((r) => setTimeout(r, 500));\n}\n';
    case 'typescript':
      return 'const greet = (name: string): string => `hello, ${name}`;\nconsole.log(greet("sluice"));\n';
    case 'bash':
      return 'for i in 1 2 3; do\n  echo "line $i"\n  sleep 0.5\ndone\n';
    case 'r':
      return 'x <- c(1, 2, 3)\nprint(mean(x))\n';
    case 'java':
      return 'public class Main {\n  public static void main(String[] args) {\n    System.out.println("hello from java");\n  }\n}\n';
    default:
      return assertNever(language, 'language');
  }
}
