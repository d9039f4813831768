/**
 * Hand-assembles the sandbox's seccomp filter (the policy of deny-list.ts) as classic BPF, with
 * no native code and no download: bwrap loads the bytes from `--seccomp FD`.
 *
 * Shape: check the audit arch (anything else is killed; on x86_64 also the x32 ABI under the
 * same arch), then one `JEQ nr` per listed syscall jumping to a shared verdict, then the few
 * syscalls whose arguments matter, each comparing only the low 32 bits of the argument: the
 * kernel reads these arguments as 32-bit ints, so junk in the upper half must not hide a
 * match (`socket(0x1_00000002, …)` is still AF_INET).
 */
import { BPFAssembler } from './bpf-assembler.js';
import { encodeProgram, type SockFilter } from './bpf.js';
import {
  ALLOWED_PERSONALITIES,
  CLONE_NAMESPACE_FLAGS,
  DENIED_IOCTLS,
  ENOSYS_SYSCALLS,
  EPERM_SYSCALLS,
  ERRNO,
  SECCOMP_RET,
  allowedFamilies,
} from './deny-list.js';
import { seccompArch, type SeccompArch, type SyscallName } from './syscalls.js';

/** Byte offsets in struct seccomp_data (linux/seccomp.h). */
const NR = 0;
const ARCH = 4;
/** Low 32 bits of args[i]: the u64 args start at 16, and both supported arches are little-endian. */
const argLow = (i: number): number => 16 + 8 * i;

/** What the filter allows beyond the base policy. */
export interface SeccompOptions {
  /** The sandbox shares the host's network: AF_INET and AF_INET6 sockets are allowed too. */
  network?: boolean;
}

/** The filter as instructions, for one architecture table. */
export function seccompProgram(arch: SeccompArch, options: SeccompOptions = {}): SockFilter[] {
  const nr = (name: SyscallName): number | undefined => arch.syscalls[name];
  const a = new BPFAssembler();

  a.load(ARCH).jumpIfEqual(arch.auditArch, null, 'kill');
  a.load(NR);
  if (arch.foreignABIBase !== undefined) a.jumpIfAtLeast(arch.foreignABIBase, 'foreign-abi');

  for (const name of EPERM_SYSCALLS) {
    const n = nr(name);
    if (n !== undefined) a.jumpIfEqual(n, 'eperm');
  }
  for (const name of ENOSYS_SYSCALLS) {
    const n = nr(name);
    if (n !== undefined) a.jumpIfEqual(n, 'enosys');
  }
  const withArgs: [SyscallName, string][] = [
    ['socket', 'socket'],
    ['socketpair', 'socket'],
    ['clone', 'clone'],
    ['ioctl', 'ioctl'],
    ['personality', 'personality'],
  ];
  for (const [name, label] of withArgs) {
    const n = nr(name);
    if (n === undefined) throw new Error(`seccomp: ${arch.name} table lacks ${name}`);
    a.jumpIfEqual(n, label);
  }
  a.ret(SECCOMP_RET.ALLOW);

  // socket(family, type, protocol) / socketpair(family, type, protocol, sv): only listed families.
  a.label('socket').load(argLow(0));
  for (const family of allowedFamilies(options.network ?? false)) a.jumpIfEqual(family, 'allow');
  a.ret(SECCOMP_RET.ERRNO | ERRNO.EAFNOSUPPORT);

  // clone(flags, …): flags is args[0] on both arches; no new namespaces.
  a.label('clone').load(argLow(0)).jumpIfAnyBit(CLONE_NAMESPACE_FLAGS, 'eperm', 'allow');

  // ioctl(fd, request, arg): the kernel takes request as an unsigned int.
  a.label('ioctl').load(argLow(1));
  a.jumpIfEqual(DENIED_IOCTLS.TIOCSTI, 'eperm');
  a.jumpIfEqual(DENIED_IOCTLS.TIOCLINUX, 'eperm', 'allow');

  // personality(unsigned int persona).
  a.label('personality').load(argLow(0));
  for (const persona of ALLOWED_PERSONALITIES) a.jumpIfEqual(persona, 'allow');
  a.ret(SECCOMP_RET.ERRNO | ERRNO.EPERM);

  if (arch.foreignABIBase !== undefined) {
    // nr -1 is how a tracer skips a syscall (the kernel answers ENOSYS); libseccomp lets it
    // through the same way. Every other number this high is the x32 ABI: kill.
    a.label('foreign-abi').jumpIfEqual(0xffffffff, 'allow', 'kill');
  }

  a.label('kill').ret(SECCOMP_RET.KILL_PROCESS);
  a.label('allow').ret(SECCOMP_RET.ALLOW);
  a.label('eperm').ret(SECCOMP_RET.ERRNO | ERRNO.EPERM);
  a.label('enosys').ret(SECCOMP_RET.ERRNO | ERRNO.ENOSYS);
  return a.assemble();
}

/**
 * The encoded filter for `--seccomp FD` (8 bytes per instruction, little-endian), for a Node
 * arch name (`x64`, `arm64`). Throws for an architecture it has no syscall table for.
 */
export function buildSeccompFilter(arch: string = process.arch, options: SeccompOptions = {}): Buffer {
  return encodeProgram(seccompProgram(seccompArch(arch), options));
}
