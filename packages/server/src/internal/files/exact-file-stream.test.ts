import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExactFileStream, FileShrankError } from './exact-file-stream.js';

async function withFile(content: Buffer, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'exact-file-stream-'));
  try {
    const path = join(dir, 'f');
    await writeFile(path, content);
    await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads the stream to its end or its error. */
async function drain(stream: ExactFileStream): Promise<{ data: Buffer; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { data: Buffer.concat(chunks), error: undefined };
  } catch (error) {
    return { data: Buffer.concat(chunks), error };
  }
}

test('a file that grows after the stat gives exactly the stat size, and the file is closed', async () => {
  const original = randomBytes(300_000);
  await withFile(original, async (path) => {
    const fh = await open(path, 'r');
    const stream = new ExactFileStream(fh, (await fh.stat()).size);
    await appendFile(path, randomBytes(100_000));
    const { data, error } = await drain(stream);
    assert.equal(error, undefined);
    assert.ok(data.equals(original));
    assert.equal(fh.fd, -1, 'closed');
  });
});

test('a file truncated between the stat and the read fails the stream instead of ending it short', async () => {
  await withFile(randomBytes(300_000), async (path) => {
    const fh = await open(path, 'r');
    const stream = new ExactFileStream(fh, (await fh.stat()).size);
    await truncate(path, 100_000);
    const { data, error } = await drain(stream);
    assert.ok(error instanceof FileShrankError, String(error));
    assert.equal(error.expectedBytes, 300_000);
    assert.equal(error.gotBytes, 100_000);
    assert.equal(data.length, 100_000);
    assert.equal(fh.fd, -1, 'closed');
  });
});

test('a file truncated mid-read fails with the error the caller chose', async () => {
  await withFile(randomBytes(1_000_000), async (path) => {
    const fh = await open(path, 'r');
    const stream = new ExactFileStream(fh, 1_000_000, (got) => new Error(`short at ${got}`));
    let truncated = false;
    let seen = 0;
    const error = await new Promise<Error>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (truncated) return;
        truncated = true;
        stream.pause();
        void truncate(path, 0).then(() => stream.resume());
      });
      stream.on('error', resolve);
      stream.on('end', () => resolve(new Error('ended without an error')));
    });
    assert.match(error.message, /^short at \d+$/);
    assert.ok(seen < 1_000_000);
  });
});

test('an empty file gives an empty stream', async () => {
  await withFile(Buffer.alloc(0), async (path) => {
    const fh = await open(path, 'r');
    const { data, error } = await drain(new ExactFileStream(fh, 0));
    assert.equal(error, undefined);
    assert.equal(data.length, 0);
    assert.equal(fh.fd, -1);
  });
});

test('destroying the stream early closes the file', async () => {
  await withFile(randomBytes(300_000), async (path) => {
    const fh = await open(path, 'r');
    const stream = new ExactFileStream(fh, 300_000);
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
    await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    assert.equal(fh.fd, -1);
  });
});
