/**
 * The filter is checked by running its encoded bytes through a small classic-BPF interpreter
 * (the opcodes seccomp allows that the filter uses, with the kernel's own load checks) against
 * hand-made `struct seccomp_data` inputs, for each architecture table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { BPF_MAXINSNS, BPF_OP, decodeProgram, type SockFilter } from './bpf.js';
import { buildSeccompFilter } from './build-filter.js';
import { CLONE_NAMESPACE_FLAGS, ENOSYS_SYSCALLS, EPERM_SYSCALLS } from './deny-list.js';
import { SYSCALL_NAMES, seccompArch, type SyscallName } from './syscalls.js';

const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errno = (n: number): number => 0x00050000 | n;
const EPERM = errno(1);
const ENOSYS = errno(38);
const EAFNOSUPPORT = errno(97);

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
const AUDIT_ARCH_ARM = 0x40000028;
const X32_SYSCALL_BIT = 0x40000000;
/** sizeof(struct seccomp_data). */
const DATA_BYTES = 64;

interface SeccompData {
  nr: number;
  arch: number;
  /** Up to six 64-bit arguments; missing ones are 0. */
  args?: bigint[];
}

function seccompData(d: SeccompData): Buffer {
  const buf = Buffer.alloc(DATA_BYTES);
  buf.writeInt32LE(d.nr | 0, 0);
  buf.writeUInt32LE(d.arch, 4);
  buf.writeBigUInt64LE(0x401000n, 8);
  (d.args ?? []).forEach((a, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  return buf;
}

/** Runs a cBPF program the way the kernel does for seccomp; throws on anything it would reject. */
function run(program: readonly SockFilter[], d: SeccompData): number {
  const data = seccompData(d);
  let a = 0;
  for (let pc = 0, steps = 0; steps <= program.length; steps++) {
    const insn = program[pc];
    if (!insn) throw new Error(`pc ${pc} is outside the program`);
    const jump = (cond: boolean): void => {
      pc += 1 + (cond ? insn.jt : insn.jf);
    };
    switch (insn.code) {
      case BPF_OP.LD_W_ABS:
        if (insn.k % 4 !== 0 || insn.k + 4 > DATA_BYTES) throw new Error(`load at ${insn.k} would be refused by the kernel`);
        a = data.readUInt32LE(insn.k);
        pc++;
        break;
      case BPF_OP.JEQ_K:
        jump(a === insn.k);
        break;
      case BPF_OP.JGE_K:
        jump(a >= insn.k);
        break;
      case BPF_OP.JSET_K:
        jump((a & insn.k) !== 0);
        break;
      case BPF_OP.RET_K:
        return insn.k;
      default:
        throw new Error(`opcode 0x${insn.code.toString(16)} at ${pc} is not one the filter should use`);
    }
  }
  throw new Error('the program did not return');
}

interface Case {
  arch: 'x64' | 'arm64';
  auditArch: number;
  program: SockFilter[];
  networkProgram: SockFilter[];
  nr(name: SyscallName): number;
}

const cases: Case[] = (['x64', 'arm64'] as const).map((arch) => {
  const table = seccompArch(arch);
  return {
    arch,
    auditArch: table.auditArch,
    program: decodeProgram(buildSeccompFilter(arch)),
    networkProgram: decodeProgram(buildSeccompFilter(arch, { network: true })),
    nr(name: SyscallName): number {
      const n = table.syscalls[name];
      if (n === undefined) throw new Error(`${arch} has no ${name}`);
      return n;
    },
  };
});

/** Other syscalls, by number, that must stay allowed (read, write, getpid, execve, wait4, futex…). */
const PLAIN: Record<Case['arch'], Record<string, number>> = {
  x64: { read: 0, write: 1, openat: 257, getpid: 39, execve: 59, wait4: 61, futex: 202, fork: 57, vfork: 58, mmap: 9, exit_group: 231 },
  arm64: { read: 63, write: 64, openat: 56, getpid: 172, execve: 221, wait4: 260, futex: 98, mmap: 222, exit_group: 94 },
};

for (const c of cases) {
  const call = (name: SyscallName, ...args: bigint[]): number => run(c.program, { nr: c.nr(name), arch: c.auditArch, args });
  const netCall = (name: SyscallName, ...args: bigint[]): number => run(c.networkProgram, { nr: c.nr(name), arch: c.auditArch, args });

  test(`${c.arch}: the filter is whole instructions, under BPF_MAXINSNS, every jump lands inside and it ends in RET`, () => {
    for (const network of [false, true]) {
      const bytes = buildSeccompFilter(c.arch, { network });
      assert.equal(bytes.length % 8, 0);
      const program = decodeProgram(bytes);
      assert.ok(program.length > 0 && program.length < BPF_MAXINSNS, `${program.length} instructions`);
      program.forEach((insn, pc) => {
        assert.ok(Object.values(BPF_OP).includes(insn.code as (typeof BPF_OP)[keyof typeof BPF_OP]), `opcode at ${pc}`);
        if (insn.code === BPF_OP.RET_K || insn.code === BPF_OP.LD_W_ABS) {
          assert.equal(insn.jt + insn.jf, 0, `no jump fields on a non-jump at ${pc}`);
        } else {
          assert.ok(insn.jt <= 255 && insn.jf <= 255);
          assert.ok(pc + 1 + Math.max(insn.jt, insn.jf) < program.length, `jump at ${pc} lands inside`);
        }
      });
      assert.equal(program[program.length - 1]?.code, BPF_OP.RET_K);
    }
  });

  test(`${c.arch}: arguments are only ever read as their low 32-bit word`, () => {
    const loads = c.program.filter((i) => i.code === BPF_OP.LD_W_ABS).map((i) => i.k);
    assert.ok(loads.includes(0) && loads.includes(4), 'reads nr and arch');
    for (const k of loads) {
      if (k < 16) assert.ok(k === 0 || k === 4, `loads nr or arch, not the instruction pointer (${k})`);
      else assert.equal((k - 16) % 8, 0, `load at ${k} is the high word of an argument`);
    }
  });

  test(`${c.arch}: every EPERM syscall of the deny-list fails with EPERM, whatever its arguments`, () => {
    for (const name of EPERM_SYSCALLS) {
      if (c.arch === 'arm64' && name === 'uselib') continue;
      assert.equal(call(name), EPERM, name);
      assert.equal(call(name, 0xffffffffffffffffn, 1n, 2n, 3n, 4n, 5n), EPERM, `${name} with arguments`);
    }
    assert.equal(call('ptrace', 0n), EPERM, 'ptrace(PTRACE_TRACEME)');
    assert.equal(call('io_uring_setup', 1n), EPERM);
    assert.equal(call('unshare', 0x10000000n), EPERM, 'unshare(CLONE_NEWUSER)');
    assert.equal(call('unshare', 0x200n), EPERM, 'unshare(CLONE_FS)');
  });

  test(`${c.arch}: clone3 and the new mount API fail with ENOSYS`, () => {
    for (const name of ENOSYS_SYSCALLS) assert.equal(call(name), ENOSYS, name);
    assert.equal(c.nr('clone3'), 435);
  });

  test(`${c.arch}: clone is allowed for threads and forks, EPERM with any namespace flag in the low 32 bits`, () => {
    const SIGCHLD = 17n;
    assert.equal(call('clone', SIGCHLD), ALLOW, 'fork-like clone');
    assert.equal(call('clone', 0x3d0f00n), ALLOW, 'pthread_create flags');
    assert.equal(call('clone', 0x10000000n | SIGCHLD), EPERM, 'CLONE_NEWUSER');
    for (let bit = 0; bit < 32; bit++) {
      const flag = 2 ** bit;
      if ((CLONE_NAMESPACE_FLAGS & flag) !== 0) assert.equal(call('clone', BigInt(flag) | SIGCHLD), EPERM, `flag 0x${flag.toString(16)}`);
    }
    for (const flag of [0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000]) {
      assert.ok((CLONE_NAMESPACE_FLAGS & flag) !== 0, `0x${flag.toString(16)} is a namespace flag`);
    }
    // The kernel takes lower_32_bits(flags): the same bit in the upper half creates no namespace.
    assert.equal(call('clone', (0x10000000n << 32n) | SIGCHLD), ALLOW);
    assert.equal(call('clone', (0xffffffffn << 32n) | 0x10000000n), EPERM);
  });

  test(`${c.arch}: ioctl TIOCSTI and TIOCLINUX fail with EPERM, compared on the low 32 bits of the request`, () => {
    assert.equal(call('ioctl', 0n, 0x5412n), EPERM, 'TIOCSTI');
    assert.equal(call('ioctl', 1n, 0x541cn), EPERM, 'TIOCLINUX');
    assert.equal(call('ioctl', 0n, 0x1_00005412n), EPERM, 'TIOCSTI with junk in the upper half');
    assert.equal(call('ioctl', 0n, 0xdeadbeef_0000541cn), EPERM, 'TIOCLINUX with junk in the upper half');
    assert.equal(call('ioctl', 0n, 0x5401n), ALLOW, 'TCGETS');
    assert.equal(call('ioctl', 0x5412n, 0x5401n), ALLOW, 'the number as fd, not as request');
    assert.equal(call('ioctl', 0n, 0x5412n << 32n), ALLOW, 'only the upper half looks like TIOCSTI (the kernel sees 0)');
  });

  test(`${c.arch}: socket and socketpair are AF_UNIX only; any other family, even with junk above bit 31, is EAFNOSUPPORT`, () => {
    for (const name of ['socket', 'socketpair'] as const) {
      assert.equal(call(name, 1n, 1n, 0n), ALLOW, `${name}(AF_UNIX)`);
      assert.equal(call(name, 0x1_00000001n, 1n, 0n), ALLOW, `${name}(AF_UNIX | junk), which the kernel reads as AF_UNIX`);
      for (const [family, label] of [[2n, 'AF_INET'], [10n, 'AF_INET6'], [16n, 'AF_NETLINK'], [17n, 'AF_PACKET'], [40n, 'AF_VSOCK'], [0n, 'AF_UNSPEC'], [0xffffffffn, '-1']] as const) {
        assert.equal(call(name, family, 1n, 0n), EAFNOSUPPORT, `${name}(${label})`);
      }
      assert.equal(call(name, 0x1_00000002n, 1n, 0n), EAFNOSUPPORT, `${name}(0x1_00000002)`);
      assert.equal(call(name, 0xffffffff_00000010n, 3n, 0n), EAFNOSUPPORT, `${name}(AF_NETLINK | junk)`);
    }
  });

  test(`${c.arch}: with network, AF_INET and AF_INET6 are allowed too, and nothing else changes`, () => {
    for (const name of ['socket', 'socketpair'] as const) {
      for (const family of [1n, 2n, 10n, 0x1_00000002n]) assert.equal(netCall(name, family, 1n, 0n), ALLOW, `${name}(${family})`);
      for (const family of [16n, 17n, 40n, 0x1_00000010n]) assert.equal(netCall(name, family, 1n, 0n), EAFNOSUPPORT, `${name}(${family})`);
    }
    assert.equal(netCall('ptrace'), EPERM);
    assert.equal(netCall('clone3'), ENOSYS);
    assert.equal(netCall('ioctl', 0n, 0x5412n), EPERM);
  });

  test(`${c.arch}: personality allows only the query (0xffffffff) and PER_LINUX`, () => {
    assert.equal(call('personality', 0xffffffffn), ALLOW);
    assert.equal(call('personality', 0n), ALLOW);
    assert.equal(call('personality', 0x0040000n), EPERM, 'ADDR_NO_RANDOMIZE');
    assert.equal(call('personality', 8n), EPERM, 'PER_LINUX32');
    assert.equal(call('personality', 0x0400000n), EPERM, 'READ_IMPLIES_EXEC');
  });

  test(`${c.arch}: every other syscall number is allowed`, () => {
    const named = new Set(SYSCALL_NAMES.map((n) => (seccompArch(c.arch).syscalls[n])));
    for (const [name, nr] of Object.entries(PLAIN[c.arch])) assert.equal(run(c.program, { nr, arch: c.auditArch, args: [1n, 2n, 3n] }), ALLOW, name);
    for (let nr = 0; nr < 1024; nr++) {
      if (named.has(nr)) continue;
      assert.equal(run(c.program, { nr, arch: c.auditArch, args: [2n, 0x5412n] }), ALLOW, `nr ${nr}`);
    }
  });

  test(`${c.arch}: a syscall under a foreign audit arch is killed`, () => {
    for (const arch of [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, 0, 0xffffffff]) {
      if (arch === c.auditArch) continue;
      for (const nr of [0, 1, 20, 39, 172]) assert.equal(run(c.program, { nr, arch }), KILL_PROCESS, `arch 0x${arch.toString(16)} nr ${nr}`);
    }
  });
}

test('x86_64: the x32 ABI (nr with bit 30 set) is killed, nr -1 is let through to the kernel\'s ENOSYS', () => {
  const program = decodeProgram(buildSeccompFilter('x64'));
  const x86 = (nr: number, ...args: bigint[]): number => run(program, { nr, arch: AUDIT_ARCH_X86_64, args });
  assert.equal(x86(X32_SYSCALL_BIT + 39), KILL_PROCESS, 'x32 getpid');
  assert.equal(x86(X32_SYSCALL_BIT + 425), KILL_PROCESS, 'x32 io_uring_setup');
  assert.equal(x86(X32_SYSCALL_BIT + 41, 2n), KILL_PROCESS, 'x32 socket');
  assert.equal(x86(X32_SYSCALL_BIT + 512), KILL_PROCESS, 'an x32-only number');
  assert.equal(x86(0x7fffffff), KILL_PROCESS);
  assert.equal(x86(-1), ALLOW);
  assert.equal(x86(39), ALLOW, 'native getpid');
});

test('the syscall tables match the kernel headers installed on this host (skipped without them)', (t) => {
  const parse = (path: string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const [, name, nr] of readFileSync(path, 'utf8').matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) {
      if (name !== undefined && nr !== undefined) m.set(name, Number(nr));
    }
    return m;
  };
  const headers: [string, 'x64' | 'arm64'][] = [
    ['/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'x64'],
    ['/usr/include/asm-generic/unistd.h', 'arm64'],
  ];
  let checked = 0;
  for (const [path, arch] of headers) {
    if (!existsSync(path)) {
      t.diagnostic(`${path} absent (linux-libc-dev not installed): ${arch} table not cross-checked`);
      continue;
    }
    const fromHeader = parse(path);
    const table = seccompArch(arch).syscalls;
    for (const name of SYSCALL_NAMES) assert.equal(table[name], fromHeader.get(name), `${arch} ${name}`);
    checked++;
  }
  if (checked === 0) t.skip('no kernel headers on this host');
});

test('the filter is the same bytes every time, and process.arch is the default', () => {
  assert.deepEqual(buildSeccompFilter('x64'), buildSeccompFilter('x64'));
  if (process.arch === 'x64' || process.arch === 'arm64') assert.deepEqual(buildSeccompFilter(), buildSeccompFilter(process.arch));
  assert.notDeepEqual(buildSeccompFilter('x64'), buildSeccompFilter('arm64'));
});

test('an architecture without a syscall table is refused, not given an empty filter', () => {
  assert.throws(() => buildSeccompFilter('riscv64'), /no syscall table for architecture "riscv64"; expected one of x64, arm64/);
  assert.throws(() => buildSeccompFilter('ia32'), /ia32/);
});
