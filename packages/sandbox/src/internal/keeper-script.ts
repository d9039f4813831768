/**
 * The keeper: the process the server spawns for each sandbox (Perl, which Debian always has,
 * starts in ~3 ms). It runs as root, before any privilege drop:
 *
 * - PR_SET_PDEATHSIG (SIGTERM, caught): when the server dies, the keeper SIGKILLs every process
 *   of the execution's cgroups and every descendant of its own, then exits. bwrap's
 *   --die-with-parent alone is not enough: it has a race that leaves sandboxes running
 *   (containers/bubblewrap#633; seen here after a SIGKILLed server);
 * - PR_SET_CHILD_SUBREAPER: bwrap's outer process exits without reaping the sandbox's PID 1,
 *   which would otherwise become a zombie of the host's PID 1 (never reaped if the server is
 *   PID 1 in a container); the keeper reaps it, so its own exit means everything is gone;
 * - it closes every inherited fd above the last one the chain uses (0–2 stdio, 3 bwrap options,
 *   4 bwrap status, 5 code, 6 exit status, 7 seccomp filter, 8 events, 9 kernel control, and for
 *   a pre-started sandbox 10, its run's variables), so nothing of the server leaks into the sandbox;
 * - its child joins the execution's cgroups before it execs the rest of the chain, so nothing
 *   can fork before it is inside them (docs/sandbox.md, "Launch chain"), and the privilege drop comes after.
 *
 * argv: the last fd to keep, N, then N cgroup.procs paths to join, then the command.
 */
export const KEEPER_SCRIPT = String.raw`
my $lastfd = shift @ARGV;
my $ncg = shift @ARGV;
my @cg = splice(@ARGV, 0, $ncg);
sub descendants {
  my (%kids, %zombie);
  opendir(my $p, "/proc") or return ();
  for my $n (grep { /^\d+$/ } readdir($p)) {
    open(my $st, '<', "/proc/$n/stat") or next;
    my $line = <$st>;
    close($st);
    next unless defined $line && $line =~ /.*\)\s+(\S)\s+(\d+)/;
    push @{ $kids{$2} }, $n;
    $zombie{$n} = 1 if $1 eq 'Z';
  }
  closedir($p);
  my @out;
  my @todo = ($$);
  while (@todo) {
    my $q = shift @todo;
    for my $c (@{ $kids{$q} || [] }) { push @out, $c unless $zombie{$c}; push @todo, $c; }
  }
  return @out;
}
$SIG{TERM} = sub {
  for (1 .. 100) {
    my @victims = descendants();
    for my $f (@cg) {
      next unless open(my $fh, '<', $f);
      while (my $l = <$fh>) { chomp $l; push @victims, $l if $l =~ /^\d+$/; }
      close($fh);
    }
    1 while waitpid(-1, 1) > 0;
    last unless @victims;
    kill 'KILL', @victims;
    select(undef, undef, undef, 0.02);
  }
  exit 137;
};
syscall(157, 1, 15);
exit 125 if getppid() == 1;
syscall(157, 36, 1);
if (opendir(my $d, "/proc/self/fd")) {
  my @fds = grep { /^\d+$/ && $_ > $lastfd } readdir($d);
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
