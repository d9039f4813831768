/**
 * The agent tab: a chat with the server's model in the current session (`session.agent` of the
 * SDK). The answer streams token by token into the page as text; each tool call is a
 * {@link ToolCard} whose code and output stream inside it. The session keeps the conversation.
 */
import type { AgentStream, AgentStreamEvent } from '@sluice/sdk';
import type { AppClient } from '../api/app-client.js';
import { assertNever } from '../assert-never.js';
import { byID } from '../dom/by-id.js';
import { el } from '../dom/el.js';
import type { SessionState } from '../session/session-state.js';
import { ToolCard } from './tool-card.js';

export class AgentPanel {
  private readonly chat = byID('chat', HTMLDivElement);
  private readonly prompt = byID('prompt', HTMLTextAreaElement);
  private readonly ask = byID('ask', HTMLButtonElement);
  private readonly stop = byID('agent-cancel', HTMLButtonElement);
  private current: AgentStream | null = null;
  /** The assistant text being streamed, until a tool call or the turn's end interrupts it. */
  private text: Text | null = null;
  private readonly cards = new Map<string, ToolCard>();

  constructor(
    private readonly client: AppClient,
    private readonly sessions: SessionState,
    private readonly onFinished: () => void,
  ) {
    byID('agent-form', HTMLFormElement).addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.send();
    });
    this.prompt.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        void this.send();
      }
    });
    this.stop.addEventListener('click', () => void this.current?.cancel());
  }

  private async send(): Promise<void> {
    const prompt = this.prompt.value.trim();
    if (prompt === '' || this.current !== null) return;
    this.prompt.value = '';
    this.append(el('div', { className: 'msg user', text: prompt }));
    this.setBusy(true);
    try {
      await this.client.authorized(async () => {
        const stream = this.sessions.session.agent.stream(prompt);
        this.current = stream;
        for await (const ev of stream) this.show(ev);
      });
    } catch (err: unknown) {
      this.append(el('div', { className: 'msg error', text: `The run failed: ${err instanceof Error ? err.message : String(err)}` }));
    } finally {
      this.current = null;
      this.text = null;
      this.cards.clear();
      this.setBusy(false);
      this.onFinished();
    }
  }

  private show(ev: AgentStreamEvent): void {
    switch (ev.type) {
      case 'agent_start':
      case 'turn_start':
        break;
      case 'text_delta':
        this.assistantText().appendData(ev.text);
        break;
      case 'tool_input_delta':
        this.card(ev.toolId, ev.toolName).inputDelta(ev.text);
        break;
      case 'tool_start':
        this.card(ev.toolId, ev.toolName).start(ev.input);
        break;
      case 'tool_output_delta':
        this.card(ev.toolId, ev.toolName).write(ev.stream, ev.text);
        break;
      case 'tool_progress':
        this.card(ev.toolId, ev.toolName).progress(ev.message ?? (ev.percent === undefined ? 'working…' : `${Math.round(ev.percent)}%`));
        break;
      case 'tool_result':
        this.card(ev.toolId, ev.toolName).result(ev.data);
        break;
      case 'tool_end':
        this.card(ev.toolId, ev.toolName).end(ev.exitCode, ev.reason);
        break;
      case 'turn_end':
        this.text = null;
        break;
      case 'gap':
        this.append(el('div', { className: 'msg note', text: `… events ${ev.fromSeq}–${ev.toSeq} are no longer in the log` }));
        break;
      case 'error':
        this.append(el('div', { className: 'msg error', text: `${ev.code}: ${ev.error}` }));
        break;
      case 'end':
        this.append(el('div', { className: 'msg note', attrs: { 'data-end': ev.reason }, text: `Run ended: ${ev.reason} · ${ev.turns} turn${ev.turns === 1 ? '' : 's'} · ${ev.totalTokens} tokens` }));
        break;
      default:
        assertNever(ev, 'agent event');
    }
  }

  /** The text node the next tokens go to (a new message after a tool call). */
  private assistantText(): Text {
    if (this.text) return this.text;
    const text = document.createTextNode('');
    this.append(el('div', { className: 'msg assistant', children: [text] }));
    this.text = text;
    return text;
  }

  private card(id: string, name: string): ToolCard {
    let card = this.cards.get(id);
    if (!card) {
      card = new ToolCard(name);
      this.cards.set(id, card);
      this.text = null;
      this.append(card.node);
    }
    return card;
  }

  private append(node: HTMLElement): void {
    const follow = this.chat.scrollHeight - this.chat.scrollTop - this.chat.clientHeight < 24;
    this.chat.append(node);
    if (follow) this.chat.scrollTop = this.chat.scrollHeight;
  }

  private setBusy(busy: boolean): void {
    document.body.dataset['agent'] = busy ? 'running' : 'idle';
    this.ask.disabled = busy;
    this.stop.disabled = !busy;
  }
}
