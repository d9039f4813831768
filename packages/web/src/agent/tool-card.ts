/**
 * One tool call of an agent run as a card: the tool's name and state, the code as the model
 * writes it (then as it runs), and the code's live output in a terminal view of its own.
 */
import { el } from '../dom/el.js';
import { renderResult } from '../output/result-view.js';
import { TerminalView, type Stream } from '../output/terminal-view.js';

export class ToolCard {
  readonly node: HTMLElement;
  private readonly state: HTMLSpanElement;
  private readonly code: HTMLPreElement;
  private readonly input: Text;
  private readonly output: TerminalView;

  constructor(toolName: string) {
    this.state = el('span', { className: 'state', text: 'writing…' });
    this.input = document.createTextNode('');
    this.code = el('pre', { className: 'tool-code', children: [this.input] });
    const out = el('div', { className: 'output', attrs: { role: 'log', 'aria-label': `${toolName} output` } });
    this.output = new TerminalView(out, 2000);
    this.node = el('article', {
      className: 'tool-card',
      attrs: { 'aria-label': `Tool call ${toolName}` },
      children: [el('header', { children: [el('strong', { text: toolName }), this.state] }), this.code, out],
    });
  }

  /** More of the call's arguments as the model streams them. */
  inputDelta(text: string): void {
    this.input.appendData(text);
  }

  /** The call starts with its parsed arguments: the code itself replaces the raw JSON. */
  start(input: Record<string, unknown>): void {
    const code = input['code'];
    this.input.data = typeof code === 'string' ? code : JSON.stringify(input, null, 2);
    const language = input['language'];
    this.state.textContent = typeof language === 'string' ? `running ${language}…` : 'running…';
  }

  write(stream: Stream, text: string): void {
    this.output.write(stream, text);
  }

  progress(message: string): void {
    this.state.textContent = message;
  }

  result(data: Record<string, unknown>): void {
    const r = renderResult(data);
    this.output.block(r.node, r.dispose);
  }

  end(exitCode: number | null, reason: string): void {
    this.state.textContent = `${reason}${exitCode === null ? '' : ` · exit code ${exitCode}`}`;
    this.node.dataset['reason'] = reason;
  }
}
