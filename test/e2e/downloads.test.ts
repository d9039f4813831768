/**
 * Downloads whose file changes while they are read, on a kept-alive connection: the body is
 * exactly the `Content-Length` the head promised (bytes appended later are not sent), or, when
 * the file shrinks below it, the connection is dropped; never a short body followed by the next
 * answer, nor file bytes where the next answer should start. A raw socket sees the exact bytes:
 * it asks for the file and, pipelined behind it, for `/healthz`; it stops reading after the first
 * body bytes (the server then stalls on the full socket buffers, far short of the file's end),
 * a code run in the session changes the file, and reading resumes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { startServer, type TestServer } from './helpers/server.js';
import { postJSON } from './helpers/client.js';

let server: TestServer;
before(async () => {
  server = await startServer({ SLUICE_UID_BASE: String(randomInt(2_000_000, 3_000_000)) });
});
after(async () => {
  await server.stop();
});

const MiB = 1024 * 1024;
/**
 * Far more than the loopback socket buffers can hold while the client does not read (here at
 * most 32 MiB received + 4 MiB sent, /proc/sys/net/ipv4/tcp_{r,w}mem), so the server is still
 * reading the file when it changes.
 */
const FILE_BYTES = 80 * MiB;
const X = 'x'.charCodeAt(0);

/** What one connection saw: the download's head and body, then the pipelined second answer. */
interface Exchange {
  status: number;
  contentLength: number;
  /** Body bytes of the download that arrived. */
  bodyBytes: number;
  /** The second answer (the `/healthz` asked for behind the download), if it arrived whole. */
  second: { status: number; body: string } | undefined;
  /** The connection ended (the server closed it), as opposed to the test finishing with it. */
  closedByServer: boolean;
}

/**
 * Sends `GET path` and, pipelined behind it, `GET /healthz` on one kept-alive connection. Calls
 * `whilePaused` once with reading paused after the first body bytes, then reads on until both
 * answers are whole or the server closes the connection. Fails at once on a body byte that is
 * not in `allowed`, or on a second answer that does not start with an HTTP status line.
 */
async function pipelinedDownload(path: string, allowed: (byte: number) => boolean, whilePaused: () => Promise<void>): Promise<Exchange> {
  const { hostname, port } = new URL(server.url);
  const socket: Socket = connect(Number(port), hostname);
  const head = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`;
  socket.write(head(path) + head('/healthz'));

  let stage: 'head1' | 'body1' | 'head2' | 'body2' | 'finished' = 'head1';
  let pending: Buffer = Buffer.alloc(0);
  let status = 0;
  let contentLength = -1;
  let bodyBytes = 0;
  let status2 = 0;
  let length2 = -1;
  let body2: Buffer = Buffer.alloc(0);
  let paused = false;

  return new Promise<Exchange>((resolve, reject) => {
    const fail = (message: string): void => {
      socket.destroy();
      reject(new Error(message));
    };
    const finish = (closedByServer: boolean): void => {
      socket.destroy();
      resolve({
        status,
        contentLength,
        bodyBytes,
        second: stage === 'finished' ? { status: status2, body: body2.toString('utf8') } : undefined,
        closedByServer,
      });
    };
    /** Splits a complete head off `pending`: [status, content-length], or null when incomplete. */
    const takeHead = (): [number, number] | null => {
      if (pending.length >= 9 && !pending.subarray(0, 9).equals(Buffer.from('HTTP/1.1 '))) {
        fail(`expected an HTTP/1.1 status line where the ${stage === 'head1' ? 'first' : 'second'} answer starts, got ${JSON.stringify(pending.subarray(0, 40).toString('latin1'))}`);
        return null;
      }
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const text = pending.subarray(0, end).toString('latin1');
      pending = pending.subarray(end + 4);
      const code = Number(text.slice(9, 12));
      const length = /\r\ncontent-length: *(\d+)/i.exec(text);
      if (!length?.[1]) {
        fail(`expected a Content-Length in ${JSON.stringify(text)}`);
        return null;
      }
      return [code, Number(length[1])];
    };
    const step = (): void => {
      for (;;) {
        if (stage === 'head1' || stage === 'head2') {
          const h = takeHead();
          if (!h) return;
          if (stage === 'head1') [status, contentLength] = h;
          else [status2, length2] = h;
          stage = stage === 'head1' ? 'body1' : 'body2';
        } else if (stage === 'body1') {
          const n = Math.min(pending.length, contentLength - bodyBytes);
          const part = pending.subarray(0, n);
          for (let i = 0; i < part.length; i++) {
            if (!allowed(part[i] as number)) {
              fail(`the download's body holds ${JSON.stringify(part.subarray(i, i + 40).toString('latin1'))} at byte ${bodyBytes + i}: not the file's bytes (the next answer read as its body?)`);
              return;
            }
          }
          bodyBytes += n;
          pending = pending.subarray(n);
          if (bodyBytes === contentLength) stage = 'head2';
          else {
            if (bodyBytes > 0 && !paused) {
              paused = true;
              socket.pause();
              whilePaused().then(
                () => socket.resume(),
                (err: Error) => fail(`changing the file failed: ${err.message}`),
              );
            }
            return;
          }
        } else if (stage === 'body2') {
          if (pending.length < length2) return;
          body2 = pending.subarray(0, length2);
          pending = pending.subarray(length2);
          stage = 'finished';
          finish(false);
          return;
        } else return;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      step();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (stage !== 'finished') finish(true);
    });
  });
}

/** Runs bash in the session and checks it exited 0. */
async function bash(session: string, code: string): Promise<void> {
  const res = await postJSON(`${server.url}/api/sessions/${session}/run`, { code, language: 'bash', mode: 'process' });
  const body = (await res.json()) as { exit_code: number; stderr: string };
  assert.equal(res.status, 200);
  assert.equal(body.exit_code, 0, body.stderr);
}

/** A session with a file of FILE_BYTES 'x' bytes at big.bin. */
async function sessionWithBigFile(id: string): Promise<string> {
  const res = await postJSON(`${server.url}/api/sessions`, { id, limits: { file_size: 2 * FILE_BYTES } });
  assert.equal(res.status, 201, await res.text());
  await bash(id, `head -c ${FILE_BYTES} /dev/zero | tr '\\0' x > big.bin`);
  return `/api/sessions/${id}/files/big.bin`;
}

test('a file that grows while it downloads: exactly Content-Length bytes, and the next answer on the connection parses', async () => {
  const path = await sessionWithBigFile('grows');
  const got = await pipelinedDownload(
    path,
    (b) => b === X,
    () => bash('grows', `head -c ${8 * MiB} /dev/zero | tr '\\0' y >> big.bin`),
  );
  assert.equal(got.status, 200);
  assert.equal(got.contentLength, FILE_BYTES);
  assert.equal(got.bodyBytes, FILE_BYTES);
  assert.equal(got.closedByServer, false);
  assert.equal(got.second?.status, 200);
  assert.equal((JSON.parse(got.second.body) as { status: string }).status, 'ok');
});

test('a file truncated while it downloads: the connection is dropped, never a short body followed by the next answer', async () => {
  const path = await sessionWithBigFile('shrinks');
  const got = await pipelinedDownload(path, (b) => b === X, () => bash('shrinks', 'truncate -s 0 big.bin'));
  assert.equal(got.status, 200);
  assert.equal(got.contentLength, FILE_BYTES);
  assert.ok(got.bodyBytes < FILE_BYTES, `the whole file arrived before the truncation (${got.bodyBytes} bytes): make FILE_BYTES larger than the socket buffers`);
  assert.equal(got.closedByServer, true);
  assert.equal(got.second, undefined);
  // The server is fine and the session's file can be read again.
  const again = await fetch(`${server.url}${path}`);
  assert.equal(again.status, 200);
  assert.equal(again.headers.get('content-length'), '0');
  assert.equal((await again.arrayBuffer()).byteLength, 0);
});

test('a file rewritten in place while it downloads: Content-Length bytes of old and new content, then the next answer', async () => {
  const path = await sessionWithBigFile('rewritten');
  const Z = 'z'.charCodeAt(0);
  const got = await pipelinedDownload(
    path,
    (b) => b === X || b === Z,
    () => bash('rewritten', `head -c ${FILE_BYTES} /dev/zero | tr '\\0' z | dd of=big.bin conv=notrunc status=none`),
  );
  assert.equal(got.contentLength, FILE_BYTES);
  assert.equal(got.bodyBytes, FILE_BYTES);
  assert.equal(got.second?.status, 200);
});
