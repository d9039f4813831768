/**
 * Reads a TCP option off another process's real socket, no spy: the socket of `pid` whose peer
 * is this test's client is found through /proc/net/tcp{,6} (by the two ports) and
 * /proc/<pid>/fd, duplicated into a python3 helper with pidfd_open + pidfd_getfd (syscalls
 * 434 and 438; needs root or ptrace rights on `pid`, as the e2e suite has), and asked with
 * getsockopt.
 */
import { spawn } from 'node:child_process';

const READ_NODELAY = String.raw`
import ctypes, os, socket, sys
pid, local_port, peer_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def inodes():
    found = []
    for table in ('/proc/%d/net/tcp' % pid, '/proc/%d/net/tcp6' % pid):
        try:
            lines = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            local, remote, inode = f[1], f[2], f[9]
            if int(local.rsplit(':', 1)[1], 16) == local_port and int(remote.rsplit(':', 1)[1], 16) == peer_port:
                found.append(inode)
    return found

want = {'socket:[%s]' % i for i in inodes()}
if not want:
    sys.exit('no TCP socket of pid %d from port %d to port %d' % (pid, local_port, peer_port))
fd = None
for name in os.listdir('/proc/%d/fd' % pid):
    try:
        if os.readlink('/proc/%d/fd/%s' % (pid, name)) in want:
            fd = int(name)
            break
    except OSError:
        pass
if fd is None:
    sys.exit('pid %d holds no fd for that socket' % pid)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
pidfd = libc.syscall(434, ctypes.c_int(pid), ctypes.c_uint(0))
if pidfd < 0:
    sys.exit('pidfd_open: ' + os.strerror(ctypes.get_errno()))
dup = libc.syscall(438, ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0))
if dup < 0:
    sys.exit('pidfd_getfd: ' + os.strerror(ctypes.get_errno()))
s = socket.socket(fileno=dup)
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
`;

/**
 * TCP_NODELAY (true/false) on the socket of process `pid` bound to `localPort` whose peer is
 * `peerPort` (the test client's own port). Rejects when no such socket is found.
 */
export function tcpNoDelayOf(pid: number, localPort: number, peerPort: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', READ_NODELAY, String(pid), String(localPort), String(peerPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`reading TCP_NODELAY failed (${code}): ${err.trim()}`));
      else resolve(out.trim() !== '0');
    });
  });
}
