/**
 * How `sluice agent` shows a run without --json: the model's text on stdout as it streams, each
 * tool call as a framed block on stdout (a header naming the tool, the code as the model writes
 * it, the code's live output, a footer with how it ended), notes and the final usage on stderr.
 * On a terminal (and without NO_COLOR) the frame is drawn with box characters and colour;
 * elsewhere in plain ASCII. Pure: it turns events into writes, the command performs them.
 *
 *     ┌─ run_code (python) ─
 *     │ print(6 * 7)
 *     ├─ output ─
 *     │ 42
 *     └─ exit 0 ─
 */
import { assertNever } from '@sluice/protocol';
import type { AgentStreamEvent, AgentToolEndEvent } from '@sluice/sdk';
import { completedStringField, JSONStringField } from './json-string-field.js';

/** One write the renderer asks for. */
export interface Write {
  to: 'stdout' | 'stderr';
  text: string;
}

export interface AgentRendererOptions {
  /** Box characters and colour (a terminal without NO_COLOR); plain ASCII otherwise. */
  fancy: boolean;
  /** The language `run_code` uses when the model names none (--language, else the session's), for the header. */
  language?: string | undefined;
}

/** Longest tool output shown for the file tools, lines (the model still gets all of it). */
const MAX_SHOWN_LINES = 20;

interface Glyphs {
  top: string;
  side: string;
  middle: string;
  bottom: string;
  rule: string;
}

const BOX: Glyphs = { top: '┌', side: '│', middle: '├', bottom: '└', rule: '─' };
const ASCII: Glyphs = { top: '+', side: '|', middle: '+', bottom: '+', rule: '-' };

const DIM = '\x1b[2m';
const CYAN = '\x1b[36m';
const RED = '\x1b[31m';
const RESET = '\x1b[0m';

/** What the renderer knows of one tool call. */
interface Call {
  name: string;
  input: JSONStringField;
  /** Code was shown from the streamed arguments. */
  codeShown: boolean;
  outputShown: boolean;
  /** run_code: the language the header named, and the one the call runs in once known. */
  shownLanguage: string | undefined;
  language: string | undefined;
}

export class AgentRenderer {
  private readonly g: Glyphs;
  private readonly calls = new Map<string, Call>();
  /** The tool call whose frame is open on stdout. */
  private open: string | undefined;
  private stdoutAtLineStart = true;

  constructor(private readonly opts: AgentRendererOptions) {
    this.g = opts.fancy ? BOX : ASCII;
  }

  /** The writes that show `ev`. */
  render(ev: AgentStreamEvent): Write[] {
    const w: Write[] = [];
    switch (ev.type) {
      case 'agent_start':
      case 'turn_start':
      case 'turn_end':
        break;
      case 'text_delta':
        this.close(w);
        this.out(w, ev.text);
        break;
      case 'tool_input_delta': {
        const call = this.call(ev.toolId, ev.toolName);
        const code = call.input.push(ev.text);
        if (ev.toolName !== 'run_code') break;
        this.frame(w, ev.toolId);
        if (code !== '') {
          call.codeShown = true;
          this.inFrame(w, code, CYAN);
        }
        break;
      }
      case 'tool_start': {
        const call = this.call(ev.toolId, ev.toolName);
        this.frame(w, ev.toolId, ev.input);
        const language = ev.input['language'];
        call.language = typeof language === 'string' ? language : (call.shownLanguage ?? this.opts.language);
        const code = ev.input['code'];
        if (ev.toolName === 'run_code' && !call.codeShown && typeof code === 'string') {
          call.codeShown = true;
          this.inFrame(w, code, CYAN);
        }
        break;
      }
      case 'tool_output_delta': {
        const call = this.call(ev.toolId, ev.toolName);
        this.frame(w, ev.toolId);
        this.outputRule(w, call);
        this.inFrame(w, ev.text, ev.stream === 'stderr' ? RED : undefined);
        break;
      }
      case 'tool_progress': {
        const call = this.call(ev.toolId, ev.toolName);
        this.frame(w, ev.toolId);
        this.outputRule(w, call);
        const percent = ev.percent === undefined ? '' : `${Math.round(ev.percent)}% `;
        this.lineInFrame(w, `… ${percent}${ev.message ?? ''}`.trimEnd(), DIM);
        break;
      }
      case 'tool_result': {
        const call = this.call(ev.toolId, ev.toolName);
        this.frame(w, ev.toolId);
        this.outputRule(w, call);
        const plain = ev.data['text/plain'];
        this.lineInFrame(w, typeof plain === 'string' ? plain : `[result: ${Object.keys(ev.data).join(', ')}]`);
        break;
      }
      case 'tool_end':
        this.endCall(w, ev);
        break;
      case 'gap':
        this.note(w, `events ${ev.fromSeq}–${ev.toSeq} are no longer held by the server and were skipped`);
        break;
      case 'error':
        this.note(w, `${ev.code}: ${ev.error}`);
        break;
      case 'end': {
        this.close(w);
        const u = ev.usage;
        const turns = `${ev.turns} turn${ev.turns === 1 ? '' : 's'}`;
        this.note(w, `${ev.reason}: ${turns}, ${ev.totalTokens} tokens (${u.promptTokens} prompt, ${u.completionTokens} completion)`);
        break;
      }
      default:
        assertNever(ev, 'agent event');
    }
    return w;
  }

  private call(id: string, name: string): Call {
    let c = this.calls.get(id);
    if (c === undefined) {
      c = { name, input: new JSONStringField('code'), codeShown: false, outputShown: false, shownLanguage: undefined, language: undefined };
      this.calls.set(id, c);
    }
    return c;
  }

  private endCall(w: Write[], ev: AgentToolEndEvent): void {
    const call = this.call(ev.toolId, ev.toolName);
    this.frame(w, ev.toolId);
    // The file tools and a call that never ran show what the model is told; run_code streamed it.
    if (ev.toolOutput !== '' && (ev.toolName !== 'run_code' || ev.reason === 'invalid' || !call.outputShown)) {
      this.outputRule(w, call);
      const lines = ev.toolOutput.replace(/\n$/, '').split('\n');
      const shown = lines.slice(0, MAX_SHOWN_LINES);
      this.inFrame(w, `${shown.join('\n')}\n`);
      if (lines.length > shown.length) this.lineInFrame(w, `… ${lines.length - shown.length} more lines`, DIM);
    }
    this.close(w, endStatus(ev));
  }

  /** Opens the frame of call `id` unless it is the open one (closing another first). */
  private frame(w: Write[], id: string, input?: Record<string, unknown>): void {
    if (this.open === id) return;
    this.close(w);
    const call = this.calls.get(id);
    const name = call?.name ?? 'tool';
    this.newLine(w);
    this.out(w, this.paint(`${this.g.top}${this.g.rule} ${name}${this.detail(name, call, input)} ${this.g.rule}`, DIM) + '\n');
    this.open = id;
  }

  /** What the header says besides the tool's name: the language of code, the path of a file. */
  private detail(name: string, call: Call | undefined, input: Record<string, unknown> | undefined): string {
    const field = (key: string): string | undefined => {
      const v = input?.[key];
      if (typeof v === 'string') return v;
      return call === undefined ? undefined : completedStringField(call.input.raw, key);
    };
    switch (name) {
      case 'run_code': {
        // The model usually writes `language` after the code: until then the header names the default.
        const language = field('language') ?? this.opts.language;
        if (call !== undefined) call.shownLanguage = language;
        return language === undefined ? '' : ` (${language})`;
      }
      case 'read_file':
      case 'write_file': {
        const path = field('path');
        return path === undefined ? '' : ` ${path}`;
      }
      case 'list_files': {
        const dir = field('dir');
        return dir === undefined ? '' : ` ${dir}`;
      }
      default:
        return '';
    }
  }

  /** The rule between a call's code and its output, once. */
  private outputRule(w: Write[], call: Call): void {
    if (call.outputShown) return;
    call.outputShown = true;
    if (!call.codeShown) return;
    this.newLine(w);
    // The header guessed the language before the model named another one: say which ran.
    const language = call.language !== undefined && call.language !== call.shownLanguage ? ` (${call.language})` : '';
    this.out(w, this.paint(`${this.g.middle}${this.g.rule} output${language} ${this.g.rule}`, DIM) + '\n');
  }

  /** Closes the open frame: with `status` when its call ended, bare when something else interrupts it. */
  private close(w: Write[], status?: string): void {
    if (this.open === undefined) return;
    this.open = undefined;
    this.newLine(w);
    this.out(w, this.paint(status === undefined ? `${this.g.bottom}${this.g.rule}` : `${this.g.bottom}${this.g.rule} ${status} ${this.g.rule}`, DIM) + '\n');
  }

  /** Text inside the open frame: each line starts with the frame's side. */
  private inFrame(w: Write[], text: string, colour?: string): void {
    const parts = text.split('\n');
    parts.forEach((part, i) => {
      if (i > 0) this.out(w, '\n');
      if (part === '') return;
      if (this.stdoutAtLineStart) this.out(w, this.paint(`${this.g.side} `, DIM));
      this.out(w, colour === undefined ? part : this.paint(part, colour));
    });
  }

  /** One whole line inside the open frame. */
  private lineInFrame(w: Write[], line: string, colour?: string): void {
    this.newLine(w);
    this.inFrame(w, `${line}\n`, colour);
  }

  private note(w: Write[], text: string): void {
    this.newLine(w);
    w.push({ to: 'stderr', text: `sluice: ${text}\n` });
  }

  private newLine(w: Write[]): void {
    if (!this.stdoutAtLineStart) this.out(w, '\n');
  }

  private out(w: Write[], text: string): void {
    if (text === '') return;
    const last = w.at(-1);
    if (last?.to === 'stdout') last.text += text;
    else w.push({ to: 'stdout', text });
    this.stdoutAtLineStart = text.endsWith('\n');
  }

  private paint(text: string, colour: string): string {
    return this.opts.fancy ? `${colour}${text}${RESET}` : text;
  }
}

/** The footer's word on how a call ended: `exit 0`, `timeout (exit 137)`, `invalid`. */
function endStatus(ev: AgentToolEndEvent): string {
  if (ev.reason === 'exited') return `exit ${ev.exitCode ?? '?'}`;
  return ev.exitCode === null ? ev.reason : `${ev.reason} (exit ${ev.exitCode})`;
}

/** Box and colour on a terminal that wants colour (https://no-color.org: any non-empty NO_COLOR turns it off). */
export function wantsFancy(stream: { isTTY?: boolean | undefined }, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] ?? '') === '' && env['TERM'] !== 'dumb';
}
