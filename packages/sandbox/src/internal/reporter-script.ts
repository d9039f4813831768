/**
 * The status reporter: the first process inside the sandbox. It runs the program and writes
 * how it really ended to fd 6 (`exit N` or `signal N`), because bubblewrap reports both a
 * death by signal N and a plain `exit(128 + N)` as the same number. It ignores the stop
 * signals so that it outlives the program it reports on; the program gets them back at their
 * defaults, and never sees fd 6.
 *
 * The launcher passes the events pipe (program → server) on fd 8 and, for kernels, the control
 * pipe (server → program) on fd 9; the program gets them as fds 3 and 4 (SLUICE_EVENTS_FD,
 * SLUICE_CONTROL_FD), so everything it sees is 0–4 with no holes.
 *
 * A pre-started sandbox (prestart.ts) also has fd 10: the run's own variables, NUL-separated
 * NAME=VALUE, read to EOF (the server writes them when the run takes the sandbox over) and
 * closed before the fork; the keeper closes fd 10 in every other sandbox.
 */
export const REPORTER_SCRIPT = String.raw`
$SIG{$_} = 'IGNORE' for qw(TERM INT HUP);
if (open(my $m, "<&=", 10)) {
  local $/;
  my $d = <$m>;
  close($m);
  for (split /\0/, (defined $d ? $d : '')) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v if defined $v; }
}
my $pid = fork();
exit 125 unless defined $pid;
if ($pid == 0) {
  $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP);
  if (open(my $fh, ">&=", 6)) { close($fh); }
  # dup() takes the lowest free fd, 3 then 4 (0-2 are stdio, the rest are closed), and with
  # $^F raised it stays open across exec; POSIX (10 ms to load) only if a hole is taken.
  $^F = 10;
  our @keep;
  for my $m ([8, 3], [9, 4]) {
    my ($from, $to) = @$m;
    open(my $src, "<&=", $from) || open($src, ">&=", $from) or next;
    open(my $dup, "+<&", $src) || open($dup, ">&", $src) || open($dup, "<&", $src) or next;
    if (fileno($dup) != $to) { require POSIX; POSIX::dup2($from, $to); close($dup); } else { push @keep, $dup; }
    close($src);
  }
  exec { $ARGV[0] } @ARGV;
  print STDERR "sluice: cannot run $ARGV[0]: $!\n";
  exit 127;
}
waitpid($pid, 0);
my $s = $?;
if (open(my $out, ">&=", 6)) { print $out ((($s & 127) ? "signal " . ($s & 127) : "exit " . ($s >> 8)) . "\n"); close($out); }
exit(($s & 127) ? 128 + ($s & 127) : ($s >> 8));
`;

/** Where the reporter appears inside the sandbox. */
export const REPORTER_PATH = '/run/sluice/exec.pl';

/** Perl, from Debian's essential perl-base package. */
export const PERL = '/usr/bin/perl';
