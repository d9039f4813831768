/**
 * Classic BPF as seccomp reads it (linux/filter.h, linux/bpf_common.h): the few opcodes the
 * filter uses, and the byte layout of `struct sock_filter { __u16 code; __u8 jt; __u8 jf;
 * __u32 k; }`, little-endian, 8 bytes per instruction.
 */

/** One classic BPF instruction. `jt`/`jf` are forward offsets from the next instruction. */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** The opcodes the filter is built from (class | size | mode, or class | op | source). */
export const BPF_OP = {
  /** A = 32-bit word at offset k of `struct seccomp_data` (BPF_LD | BPF_W | BPF_ABS). */
  LD_W_ABS: 0x20,
  /** pc += (A == k) ? jt : jf (BPF_JMP | BPF_JEQ | BPF_K). */
  JEQ_K: 0x15,
  /** pc += (A >= k) ? jt : jf, unsigned (BPF_JMP | BPF_JGE | BPF_K). */
  JGE_K: 0x35,
  /** pc += (A & k) ? jt : jf (BPF_JMP | BPF_JSET | BPF_K). */
  JSET_K: 0x45,
  /** Return k as the filter's verdict (BPF_RET | BPF_K). */
  RET_K: 0x06,
} as const;

/** Bytes per encoded instruction (sizeof(struct sock_filter)). */
export const SOCK_FILTER_BYTES = 8;

/** The kernel refuses longer programs (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

/** Encodes instructions as the kernel (and bwrap's `--seccomp FD`) expects them. */
export function encodeProgram(program: readonly SockFilter[]): Buffer {
  if (program.length === 0 || program.length > BPF_MAXINSNS) {
    throw new RangeError(`BPF program: expected 1 to ${BPF_MAXINSNS} instructions, got ${program.length}`);
  }
  const buf = Buffer.alloc(program.length * SOCK_FILTER_BYTES);
  program.forEach((insn, i) => {
    checkField(i, 'code', insn.code, 0xffff);
    checkField(i, 'jt', insn.jt, 0xff);
    checkField(i, 'jf', insn.jf, 0xff);
    checkField(i, 'k', insn.k, 0xffffffff);
    const at = i * SOCK_FILTER_BYTES;
    buf.writeUInt16LE(insn.code, at);
    buf.writeUInt8(insn.jt, at + 2);
    buf.writeUInt8(insn.jf, at + 3);
    buf.writeUInt32LE(insn.k, at + 4);
  });
  return buf;
}

/** Decodes an encoded program (the inverse of encodeProgram). */
export function decodeProgram(bytes: Uint8Array): SockFilter[] {
  if (bytes.length % SOCK_FILTER_BYTES !== 0) {
    throw new RangeError(`BPF program: expected a multiple of ${SOCK_FILTER_BYTES} bytes, got ${bytes.length}`);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: SockFilter[] = [];
  for (let at = 0; at < buf.length; at += SOCK_FILTER_BYTES) {
    out.push({ code: buf.readUInt16LE(at), jt: buf.readUInt8(at + 2), jf: buf.readUInt8(at + 3), k: buf.readUInt32LE(at + 4) });
  }
  return out;
}

function checkField(index: number, name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`BPF instruction ${index}: ${name} must be an integer from 0 to ${max}, got ${value}`);
  }
}
