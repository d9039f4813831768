/**
 * The syscalls the filter names, per architecture, with the audit arch value the kernel puts
 * in `seccomp_data.arch`. Numbers from the kernel's tables: arch/x86/entry/syscalls/syscall_64.tbl
 * (x86_64) and include/uapi/asm-generic/unistd.h (aarch64, which has no `uselib`).
 */

/** Every syscall the policy mentions. */
export const SYSCALL_NAMES = [
  'ioctl', 'socket', 'socketpair', 'clone', 'clone3', 'personality',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'bpf', 'perf_event_open', 'userfaultfd',
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
  'add_key', 'request_key', 'keyctl', 'ptrace', 'process_vm_readv', 'process_vm_writev',
  'syslog', 'acct', 'quotactl', 'uselib', 'swapon', 'swapoff', 'reboot',
  'move_pages', 'mbind', 'get_mempolicy', 'set_mempolicy', 'migrate_pages',
  'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'chroot', 'open_by_handle_at', 'name_to_handle_at',
  'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr',
] as const;

/** A syscall the policy mentions. */
export type SyscallName = (typeof SYSCALL_NAMES)[number];

/** An architecture the filter can be built for. */
export interface SeccompArch {
  /** Kernel name, as in AUDIT_ARCH_*. */
  name: 'x86_64' | 'aarch64';
  /** AUDIT_ARCH_* value (linux/audit.h): EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
  auditArch: number;
  /**
   * Syscall numbers at or above this are another ABI under the same audit arch (x32 on x86_64
   * sets bit 30, __X32_SYSCALL_BIT); undefined when the arch has no such ABI.
   */
  foreignABIBase?: number;
  /** Syscall numbers; absent means the arch does not have that syscall. */
  syscalls: Partial<Record<SyscallName, number>>;
}

const X86_64: SeccompArch = {
  name: 'x86_64',
  auditArch: 0xc000003e,
  foreignABIBase: 0x40000000,
  syscalls: {
    ioctl: 16, socket: 41, socketpair: 53, clone: 56, clone3: 435, personality: 135,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, bpf: 321, perf_event_open: 298, userfaultfd: 323,
    kexec_load: 246, kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176,
    add_key: 248, request_key: 249, keyctl: 250, ptrace: 101, process_vm_readv: 310, process_vm_writev: 311,
    syslog: 103, acct: 163, quotactl: 179, uselib: 134, swapon: 167, swapoff: 168, reboot: 169,
    move_pages: 279, mbind: 237, get_mempolicy: 239, set_mempolicy: 238, migrate_pages: 256,
    unshare: 272, setns: 308, mount: 165, umount2: 166, pivot_root: 155, chroot: 161, open_by_handle_at: 304, name_to_handle_at: 303,
    open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
  },
};

const AARCH64: SeccompArch = {
  name: 'aarch64',
  auditArch: 0xc00000b7,
  syscalls: {
    ioctl: 29, socket: 198, socketpair: 199, clone: 220, clone3: 435, personality: 92,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, bpf: 280, perf_event_open: 241, userfaultfd: 282,
    kexec_load: 104, kexec_file_load: 294, init_module: 105, finit_module: 273, delete_module: 106,
    add_key: 217, request_key: 218, keyctl: 219, ptrace: 117, process_vm_readv: 270, process_vm_writev: 271,
    syslog: 116, acct: 89, quotactl: 60, swapon: 224, swapoff: 225, reboot: 142,
    move_pages: 239, mbind: 235, get_mempolicy: 236, set_mempolicy: 237, migrate_pages: 238,
    unshare: 97, setns: 268, mount: 40, umount2: 39, pivot_root: 41, chroot: 51, open_by_handle_at: 265, name_to_handle_at: 264,
    open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
  },
};

/** Node's `process.arch` → the architecture's table. */
const BY_NODE_ARCH: Partial<Record<string, SeccompArch>> = { x64: X86_64, arm64: AARCH64 };

/** The table for a Node arch name (`process.arch`); throws for one the filter does not know. */
export function seccompArch(nodeArch: string): SeccompArch {
  const arch = BY_NODE_ARCH[nodeArch];
  if (!arch) {
    throw new Error(`seccomp: no syscall table for architecture ${JSON.stringify(nodeArch)}; expected one of ${Object.keys(BY_NODE_ARCH).join(', ')}`);
  }
  return arch;
}
