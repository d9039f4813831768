/**
 * The mounter: one Perl process per server (root) that makes and removes the workspaces'
 * mounts with the mount(2) and umount2(2) syscalls, one request at a time.
 *
 * Why not mount(8) per call: each call was a spawn() of the server (a fork of a process of
 * 100–200 MiB, 5–15 ms of its event loop on 2 cores), and mount(8) reads the whole mount table
 * (one line per workspace mount) every time. Five calls per session, made and removed, were a
 * third of the server's CPU during a burst of new sessions.
 *
 * argv: the syscall numbers of mount and umount2 (seccomp/syscalls.ts). stdin: requests, each
 * `LENGTH\n` then LENGTH bytes of NUL-separated fields: `m`, source, target, fstype, flags,
 * data, or `u`, target, flags. stdout: one line per request, in order: `ok` or `err MESSAGE`.
 * It exits at end of input (the server is gone).
 */
export const MOUNT_SCRIPT = String.raw`
my ($sys_mount, $sys_umount) = (0 + shift @ARGV, 0 + shift @ARGV);
$| = 1;
while (defined(my $len = <STDIN>)) {
  chomp $len;
  my $buf = '';
  while (length($buf) < $len) { my $n = read(STDIN, $buf, $len - length($buf), length($buf)); exit 0 unless $n; }
  my @f = split /\0/, $buf, -1;
  my $op = shift @f;
  my $r = -1;
  $! = 0;
  if ($op eq 'm' && @f == 5) { $r = syscall($sys_mount, $f[0], $f[1], $f[2], 0 + $f[3], $f[4]); }
  elsif ($op eq 'u' && @f == 2) { $r = syscall($sys_umount, $f[0], 0 + $f[1]); }
  else { $! = 22; }
  if ($r == 0) { print "ok\n"; } else { my $e = "$!"; $e =~ s/\n/ /g; print "err $e\n"; }
}
`;
