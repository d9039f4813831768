/**
 * The code editor: CodeMirror 6 with the basic setup, the language's highlighting (swapped in a
 * compartment) and Ctrl/Cmd+Enter to run. Tab is left to move the focus, so the page works
 * with the keyboard alone (indent with Ctrl+] / Ctrl+[ as CodeMirror binds them).
 *
 * It lives in a shadow root: there CodeMirror puts its styles in constructed style sheets,
 * which the page's CSP (`style-src 'self'`, no inline styles) allows; in the document it would
 * add a `<style>` element, which that policy refuses.
 */
import { Compartment, Prec } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { EditorView, basicSetup } from 'codemirror';
import type { Language } from '@sluice/sdk';
import { languageSupport } from './language-support.js';

/** The page's look for the editor (app.css cannot reach into the shadow root). */
const THEME = EditorView.theme({
  '&': { minHeight: '8rem', maxHeight: '45vh', fontSize: '0.9rem' },
  '.cm-scroller': { overflow: 'auto', fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace' },
  '&.cm-focused': { outline: '3px solid #f2b600' },
});

export class CodeEditor {
  private readonly view: EditorView;
  private readonly language = new Compartment();

  constructor(parent: HTMLElement, initial: Language, code: string, onRun: () => void) {
    const run = (): boolean => {
      onRun();
      return true;
    };
    const root = parent.attachShadow({ mode: 'open' });
    this.view = new EditorView({
      parent: root,
      root,
      doc: code,
      extensions: [
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run }])),
        basicSetup,
        this.language.of(languageSupport(initial)),
        EditorView.contentAttributes.of({ 'aria-label': 'Code' }),
        THEME,
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
