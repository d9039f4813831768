/**
 * The sandbox's seccomp policy (docs/seccomp.md): a deny-list in the Flatpak / Codex /
 * isolate lineage. Everything not named here is allowed; the namespaces, the read-only mounts,
 * the dropped capabilities and the cgroups do the rest.
 */
import type { SyscallName } from './syscalls.js';

/** Verdicts (linux/seccomp.h). ERRNO carries the errno in its low 16 bits. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000,
  ALLOW: 0x7fff0000,
} as const;

/** The errno values the filter answers with (asm-generic/errno*.h). */
export const ERRNO = { EPERM: 1, ENOSYS: 38, EAFNOSUPPORT: 97 } as const;

/**
 * Fail with EPERM: kernel attack surface no program needs (io_uring can even create sockets
 * without socket()), other processes' memory (ptrace, process_vm_*), keyrings, modules,
 * kexec, NUMA policy, mounts and namespaces. (`personality` fails with EPERM too, but is
 * checked with its argument: see ALLOWED_PERSONALITIES.)
 */
export const EPERM_SYSCALLS = [
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'bpf', 'perf_event_open', 'userfaultfd',
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
  'add_key', 'request_key', 'keyctl', 'ptrace', 'process_vm_readv', 'process_vm_writev',
  'syslog', 'acct', 'quotactl', 'uselib', 'swapon', 'swapoff', 'reboot',
  'move_pages', 'mbind', 'get_mempolicy', 'set_mempolicy', 'migrate_pages',
  'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'chroot', 'open_by_handle_at', 'name_to_handle_at',
] as const satisfies readonly SyscallName[];

/**
 * Fail with ENOSYS, as if the kernel were older: the new mount API, and clone3 (whose flags sit
 * in memory, out of seccomp's reach), so that glibc falls back to clone, which the filter can see.
 */
export const ENOSYS_SYSCALLS = [
  'clone3', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr',
] as const satisfies readonly SyscallName[];

/**
 * `clone` with any of these flags (args[0], low 32 bits) fails with EPERM: CLONE_NEWNS,
 * NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (linux/sched.h). CLONE_NEWTIME (0x80)
 * is left out: for clone it is part of the exit-signal byte.
 */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/** `ioctl` requests (args[1], low 32 bits) that fail with EPERM: typing into / driving the terminal. */
export const DENIED_IOCTLS = { TIOCSTI: 0x5412, TIOCLINUX: 0x541c } as const;

/** `personality` values (args[0], low 32 bits) that stay allowed: PER_LINUX and the 0xffffffff query. */
export const ALLOWED_PERSONALITIES = [0, 0xffffffff] as const;

/** Address families (linux/socket.h). */
export const AF = { UNIX: 1, INET: 2, INET6: 10 } as const;

/**
 * Families `socket`/`socketpair` may use (args[0], low 32 bits); any other fails with
 * EAFNOSUPPORT (no AF_NETLINK, AF_VSOCK, AF_PACKET…). IP only when the session has network.
 */
export function allowedFamilies(network: boolean): number[] {
  return network ? [AF.UNIX, AF.INET, AF.INET6] : [AF.UNIX];
}
