/**
 * A tiny classic-BPF assembler with forward labels, so that no jump offset is counted by hand:
 * cBPF jumps only forward, and `jt`/`jf` are 8-bit, so every conditional target must lie 0–255
 * instructions past the next one; assemble() checks that and names the jump that does not fit.
 */
import { BPF_MAXINSNS, BPF_OP, type SockFilter } from './bpf.js';

/** Where a conditional jump goes: a label defined later, or null for the next instruction. */
export type JumpTarget = string | null;

type Item =
  | { kind: 'label'; name: string }
  | { kind: 'insn'; code: number; k: number; jt: JumpTarget; jf: JumpTarget };

/** Largest offset `jt`/`jf` can hold. */
const MAX_JUMP = 0xff;

/** Builds a cBPF program instruction by instruction; labels name positions for later jumps. */
export class BPFAssembler {
  private readonly items: Item[] = [];

  /** Names the position of the next instruction. Each name once. */
  label(name: string): this {
    if (this.items.some((it) => it.kind === 'label' && it.name === name)) throw new Error(`BPF label defined twice: ${name}`);
    this.items.push({ kind: 'label', name });
    return this;
  }

  /** A = the 32-bit word at byte `offset` of struct seccomp_data. */
  load(offset: number): this {
    return this.insn(BPF_OP.LD_W_ABS, offset, null, null);
  }

  /** If A == k go to `jt`, else to `jf`. */
  jumpIfEqual(k: number, jt: JumpTarget, jf: JumpTarget = null): this {
    return this.insn(BPF_OP.JEQ_K, k, jt, jf);
  }

  /** If A >= k (unsigned) go to `jt`, else to `jf`. */
  jumpIfAtLeast(k: number, jt: JumpTarget, jf: JumpTarget = null): this {
    return this.insn(BPF_OP.JGE_K, k, jt, jf);
  }

  /** If A & k is non-zero go to `jt`, else to `jf`. */
  jumpIfAnyBit(k: number, jt: JumpTarget, jf: JumpTarget = null): this {
    return this.insn(BPF_OP.JSET_K, k, jt, jf);
  }

  /** End the filter with verdict `k`. */
  ret(k: number): this {
    return this.insn(BPF_OP.RET_K, k, null, null);
  }

  /** Resolves labels into offsets; throws on an unknown label, a backward jump or one over 255. */
  assemble(): SockFilter[] {
    const at = new Map<string, number>();
    let n = 0;
    for (const it of this.items) {
      if (it.kind === 'label') at.set(it.name, n);
      else n++;
    }
    if (n === 0 || n > BPF_MAXINSNS) throw new RangeError(`BPF program: expected 1 to ${BPF_MAXINSNS} instructions, got ${n}`);
    const out: SockFilter[] = [];
    for (const it of this.items) {
      if (it.kind === 'label') continue;
      const pc = out.length;
      const offset = (target: JumpTarget): number => {
        if (target === null) return 0;
        const dest = at.get(target);
        if (dest === undefined) throw new Error(`BPF instruction ${pc}: jump to undefined label ${target}`);
        const off = dest - (pc + 1);
        if (off < 0) throw new RangeError(`BPF instruction ${pc}: jump to ${target} goes backwards (cBPF jumps only forward)`);
        if (off > MAX_JUMP) throw new RangeError(`BPF instruction ${pc}: jump to ${target} is ${off} instructions, more than ${MAX_JUMP}`);
        if (dest >= n) throw new RangeError(`BPF instruction ${pc}: label ${target} is past the last instruction`);
        return off;
      };
      out.push({ code: it.code, jt: offset(it.jt), jf: offset(it.jf), k: it.k });
    }
    return out;
  }

  private insn(code: number, k: number, jt: JumpTarget, jf: JumpTarget): this {
    if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) throw new RangeError(`BPF constant must be an unsigned 32-bit integer, got ${k}`);
    this.items.push({ kind: 'insn', code, k, jt, jf });
    return this;
  }
}
