import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BPFAssembler } from './bpf-assembler.js';
import { BPF_OP } from './bpf.js';

test('labels resolve to offsets counted from the next instruction; null falls through', () => {
  const p = new BPFAssembler()
    .load(0)
    .jumpIfEqual(1, 'one')
    .jumpIfAtLeast(5, 'big', 'one')
    .ret(0)
    .label('one')
    .ret(1)
    .label('big')
    .jumpIfAnyBit(0x80, null, 'last')
    .ret(2)
    .label('last')
    .ret(3)
    .assemble();
  assert.deepEqual(p, [
    { code: BPF_OP.LD_W_ABS, jt: 0, jf: 0, k: 0 },
    { code: BPF_OP.JEQ_K, jt: 2, jf: 0, k: 1 },
    { code: BPF_OP.JGE_K, jt: 2, jf: 1, k: 5 },
    { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 0 },
    { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 1 },
    { code: BPF_OP.JSET_K, jt: 0, jf: 1, k: 0x80 },
    { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 2 },
    { code: BPF_OP.RET_K, jt: 0, jf: 0, k: 3 },
  ]);
});

test('a jump of exactly 255 instructions fits, 256 is refused with the jump named', () => {
  const build = (gap: number) => {
    const a = new BPFAssembler().load(0).jumpIfEqual(7, 'far');
    for (let i = 0; i < gap; i++) a.ret(0);
    return a.label('far').ret(1).assemble();
  };
  const fits = build(255);
  assert.equal(fits[1]?.jt, 255);
  assert.throws(() => build(256), /instruction 1: jump to far is 256 instructions, more than 255/);
});

test('undefined labels, labels defined twice and labels past the end are refused', () => {
  assert.throws(() => new BPFAssembler().load(0).jumpIfEqual(1, 'nowhere').ret(0).assemble(), /undefined label nowhere/);
  assert.throws(() => new BPFAssembler().label('x').label('x'), /defined twice: x/);
  assert.throws(() => new BPFAssembler().load(0).jumpIfEqual(1, 'end').ret(0).label('end').assemble(), /past the last instruction/);
});

test('jumps only go forward (cBPF has no backward jumps)', () => {
  assert.throws(() => new BPFAssembler().label('top').load(0).jumpIfEqual(1, 'top').ret(0).assemble(), /goes backwards/);
});

test('constants must be unsigned 32-bit', () => {
  assert.throws(() => new BPFAssembler().ret(-1), /unsigned 32-bit integer, got -1/);
  assert.throws(() => new BPFAssembler().jumpIfEqual(2 ** 32, null), /unsigned 32-bit/);
  assert.throws(() => new BPFAssembler().assemble(), /got 0/);
});
