/**
 * Assembles the tool calls of one streamed assistant turn from their {@link ToolCallDelta}s,
 * the way providers really send them: a call's `id` and name in its first fragment only, its
 * arguments cut anywhere (mid-token, mid-escape) across many fragments, several calls
 * interleaved by `index`. Quirks handled: a fragment without `index` continues the last call
 * unless it brings a new `id` (then it starts one); an `index` seen before arriving with a
 * different `id` and a name starts a new call; a call that never gets an `id` is given one.
 */
import { randomBytes } from 'node:crypto';
import type { ToolCallDelta } from './chat-delta.js';

/** The arguments of a finished call, parsed: a JSON object, or why they are not one. */
export type ParsedArguments = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/** One assembled tool call, in the order the calls began. */
export interface AssembledToolCall {
  id: string;
  /** Empty when the provider never named it (answer that to the model as an unknown tool). */
  name: string;
  /** The arguments exactly as streamed. */
  arguments: string;
  /** Empty arguments count as `{}` (some servers send none for a tool without parameters). */
  parsed: ParsedArguments;
}

/** Where a fragment went: enough to stream `tool_input_delta` as it arrives. */
export interface ToolCallUpdate {
  /** The call's position in {@link ToolCallAccumulator.finish}'s list. */
  position: number;
  /** The call's id, fixed from its first fragment on (generated if the provider sent none then). */
  id: string;
  /** The name known so far (may be empty until a fragment names it). */
  name: string;
  /** True when this fragment began the call. */
  started: boolean;
  /** The arguments text this fragment added (possibly empty). */
  fragment: string;
}

interface Slot {
  index: number | undefined;
  id: string;
  /** The provider gave the id (as opposed to us generating it). */
  providerID: boolean;
  name: string;
  arguments: string;
}

/** Collects one turn's tool-call fragments; {@link finish} gives the calls. */
export class ToolCallAccumulator {
  private readonly slots: Slot[] = [];
  /** The latest call begun at each provider index: a repeated index with a new id replaces it. */
  private readonly byIndex = new Map<number, Slot>();

  constructor(private readonly newID: () => string = generatedToolCallID) {}

  /** Adds one fragment and says which call it belongs to. */
  push(delta: ToolCallDelta): ToolCallUpdate {
    const target = delta.index === undefined ? this.slots.at(-1) : this.byIndex.get(delta.index);
    let slot = target;
    let started = false;
    if (slot === undefined || this.startsNewCall(slot, delta)) {
      slot = {
        index: delta.index,
        id: delta.id ?? this.newID(),
        providerID: delta.id !== undefined,
        name: '',
        arguments: '',
      };
      this.slots.push(slot);
      if (slot.index !== undefined) this.byIndex.set(slot.index, slot);
      started = true;
    }
    // Some servers repeat the name on every fragment: it names the call, never extends it.
    if (delta.name !== undefined && slot.name.length === 0) slot.name = delta.name;
    slot.arguments += delta.arguments;
    return { position: this.slots.indexOf(slot), id: slot.id, name: slot.name, started, fragment: delta.arguments };
  }

  /** The calls so far, in the order they began, with their arguments parsed. */
  finish(): AssembledToolCall[] {
    return this.slots.map((s) => ({ id: s.id, name: s.name, arguments: s.arguments, parsed: parseArguments(s.arguments) }));
  }

  /** True when nothing has been pushed. */
  get empty(): boolean {
    return this.slots.length === 0;
  }

  /**
   * A fragment carrying an id other than its call's begins another call when that call's id
   * came from the provider (ids come only in first fragments), or when the fragment also
   * carries a name. A late id alone on a call we had to name is taken as that call's and
   * ignored, so the id already streamed to clients stays the call's id.
   */
  private startsNewCall(slot: Slot, delta: ToolCallDelta): boolean {
    if (delta.id === undefined || delta.id === slot.id) return false;
    return slot.providerID || delta.name !== undefined;
  }
}

/** Parses a call's arguments as a JSON object. */
export function parseArguments(text: string): ParsedArguments {
  if (text.trim().length === 0) return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `the arguments are not valid JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: `the arguments must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}` };
  }
  // A parsed JSON object is a plain record of JSON values.
  return { ok: true, value: value as Record<string, unknown> };
}

/** An id in OpenAI's style for a call the provider sent without one. */
export function generatedToolCallID(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}
