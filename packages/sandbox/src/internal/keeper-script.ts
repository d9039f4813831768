/**
 * The keeper: the process the server spawns for each sandbox (Perl, which Debian always has,
 * starts in ~3 ms). It runs as root, before any privilege drop:
 *
 * - PR_SET_PDEATHSIG: it dies with the server, and bwrap's --die-with-parent then takes the
 *   sandbox down too;
 * - PR_SET_CHILD_SUBREAPER: bwrap's outer process exits without reaping the sandbox's PID 1,
 *   which would otherwise become a zombie of the host's PID 1 (never reaped if the server is
 *   PID 1 in a container); the keeper reaps it, so its own exit means everything is gone;
 * - it closes every inherited fd above 7 (0–2 stdio, 3 bwrap options, 4 bwrap status, 5 code,
 *   6 exit status, 7 seccomp filter), so nothing of the server leaks into the sandbox;
 * - its child joins the execution's cgroups before it execs the rest of the chain, so nothing
 *   can fork before it is inside them (SANDBOX.md rule 7), and the privilege drop comes after.
 *
 * argv: N, then N cgroup.procs paths to join, then the command.
 */
export const KEEPER_SCRIPT = String.raw`
my $ncg = shift @ARGV;
my @cg = splice(@ARGV, 0, $ncg);
syscall(157, 1, 9);
exit 125 if getppid() == 1;
syscall(157, 36, 1);
if (opendir(my $d, "/proc/self/fd")) {
  my @fds = grep { /^\d+$/ && $_ > 7 } readdir($d);
  closedir($d);
  for (@fds) { my $fh; (open($fh, "<&=", $_) || open($fh, ">&=", $_)) and close($fh); }
}
my $pid = fork();
exit 125 unless defined $pid;
if ($pid == 0) {
  for my $f (@cg) {
    open(my $fh, '>', $f) or do { print STDERR "sluice: cannot join cgroup $f: $!\n"; exit 126; };
    syswrite($fh, "$$\n") or do { print STDERR "sluice: cannot join cgroup $f: $!\n"; exit 126; };
    close($fh);
  }
  exec { $ARGV[0] } @ARGV;
  print STDERR "sluice: cannot run $ARGV[0]: $!\n";
  exit 127;
}
my $code = 125;
while ((my $p = waitpid(-1, 0)) > 0) { $code = ($? & 127) ? 128 + ($? & 127) : ($? >> 8) if $p == $pid; }
exit $code;
`;
