import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BPF_MAXINSNS, BPF_OP, SOCK_FILTER_BYTES, decodeProgram, encodeProgram } from './bpf.js';

test('an instruction is 8 bytes: u16 code, u8 jt, u8 jf, u32 k, little-endian', () => {
  const buf = encodeProgram([{ code: BPF_OP.JEQ_K, jt: 3, jf: 0xfe, k: 0xc000003e }]);
  assert.equal(SOCK_FILTER_BYTES, 8);
  assert.deepEqual([...buf], [0x15, 0x00, 0x03, 0xfe, 0x3e, 0x00, 0x00, 0xc0]);
});

test('the opcodes are the classic BPF encodings seccomp accepts', () => {
  // BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K, BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K
  assert.deepEqual(BPF_OP, { LD_W_ABS: 0x20, JEQ_K: 0x15, JGE_K: 0x35, JSET_K: 0x45, RET_K: 0x06 });
});

test('decodeProgram inverts encodeProgram', () => {
  const program = [
    { code: BPF_OP.LD_W_ABS, jt: 0, jf: 0, k: 4 },
    { code: BPF_OP.JSET_K, jt: 255, jf: 1, k: 0x7e020000 },
    { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 0xffffffff },
  ];
  const buf = encodeProgram(program);
  assert.equal(buf.length, program.length * 8);
  assert.deepEqual(decodeProgram(buf), program);
  assert.deepEqual(decodeProgram(new Uint8Array(buf)), program);
});

test('fields out of range are refused with the field named', () => {
  const ok = { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 0 };
  assert.throws(() => encodeProgram([{ ...ok, jt: 256 }]), /instruction 0: jt must be an integer from 0 to 255, got 256/);
  assert.throws(() => encodeProgram([{ ...ok, jf: -1 }]), /jf must be/);
  assert.throws(() => encodeProgram([{ ...ok, k: 2 ** 32 }]), /k must be an integer from 0 to 4294967295/);
  assert.throws(() => encodeProgram([{ ...ok, code: 0x10000 }]), /code must be/);
  assert.throws(() => encodeProgram([{ ...ok, k: 1.5 }]), /k must be/);
});

test('empty and over-long programs are refused, and so are partial instructions', () => {
  assert.throws(() => encodeProgram([]), /1 to 4096 instructions, got 0/);
  const ret = { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 0 };
  assert.equal(encodeProgram(Array.from({ length: BPF_MAXINSNS }, () => ret)).length, BPF_MAXINSNS * 8);
  assert.throws(() => encodeProgram(Array.from({ length: BPF_MAXINSNS + 1 }, () => ret)), /got 4097/);
  assert.throws(() => decodeProgram(new Uint8Array(12)), /multiple of 8 bytes, got 12/);
});
