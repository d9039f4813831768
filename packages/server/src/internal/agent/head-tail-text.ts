/**
 * Text kept within a bound as it grows: the first half of the bound and the latest half, with
 * the characters in between counted, not held. What a tool's output becomes for the model, whose
 * context is finite while a program's output is not.
 */
export class HeadTailText {
  private head = '';
  private tail = '';
  private dropped = 0;

  constructor(private readonly maxChars: number) {}

  append(text: string): void {
    const half = Math.floor(this.maxChars / 2);
    if (this.head.length < half) {
      const room = half - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
      if (text.length === 0) return;
    }
    this.tail += text;
    const limit = this.maxChars - half;
    // Trimmed only when twice over, so a stream of small appends costs O(1) amortised.
    if (this.tail.length > 2 * limit) {
      this.dropped += this.tail.length - limit;
      this.tail = this.tail.slice(-limit);
    }
  }

  /** Characters not kept. */
  get droppedChars(): number {
    const limit = this.maxChars - Math.floor(this.maxChars / 2);
    return this.dropped + Math.max(0, this.tail.length - limit);
  }

  get empty(): boolean {
    return this.head.length === 0 && this.tail.length === 0;
  }

  /** The kept text, with a line saying how much of the middle is missing. */
  toString(): string {
    const limit = this.maxChars - Math.floor(this.maxChars / 2);
    const dropped = this.droppedChars;
    const tail = this.tail.length > limit ? this.tail.slice(-limit) : this.tail;
    if (dropped === 0) return this.head + tail;
    return `${this.head}\n[… ${dropped} characters cut from the middle …]\n${tail}`;
  }
}
