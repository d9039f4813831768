/**
 * The code editor: CodeMirror 6 with the basic setup, the language's highlighting (swapped in a
 * compartment) and Ctrl/Cmd+Enter to run. Tab is left to move the focus, so the page works
 * with the keyboard alone (indent with Ctrl+] / Ctrl+[ as CodeMirror binds them).
 */
import { Compartment, Prec } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { EditorView, basicSetup } from 'codemirror';
import type { Language } from '@sluice/sdk';
import { languageSupport } from './language-support.js';

export class CodeEditor {
  private readonly view: EditorView;
  private readonly language = new Compartment();

  constructor(parent: HTMLElement, initial: Language, code: string, onRun: () => void) {
    const run = (): boolean => {
      onRun();
      return true;
    };
    this.view = new EditorView({
      parent,
      doc: code,
      extensions: [
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run }])),
        basicSetup,
        this.language.of(languageSupport(initial)),
        EditorView.contentAttributes.of({ 'aria-label': 'Code', 'aria-describedby': 'run' }),
      ],
    });
  }

  /** The code as typed. */
  get code(): string {
    return this.view.state.doc.toString();
  }

  /** Replaces the code (a new language's sample). */
  set code(text: string) {
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: text } });
  }

  /** Highlights as `language`. */
  setLanguage(language: Language): void {
    this.view.dispatch({ effects: this.language.reconfigure(languageSupport(language)) });
  }

  focus(): void {
    this.view.focus();
  }
}
