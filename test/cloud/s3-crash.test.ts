/**
 * kill -9 of `ferry cloud serve` in the middle of S3 uploads: after a
 * restart an object is absent or whole (the old version or the new one),
 * never partial, and what was in flight is cleaned away.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { CLI } from '../helpers/cli.js';
import { withTempDir } from '../helpers/qemu.js';
import { pattern, s3Client } from '../helpers/s3.js';

const B = 'crash-bucket';
const MiB = 1024 * 1024;

function serve(dir: string): Promise<{ child: ChildProcess; endpoint: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'cloud', 'serve', '--data', dir, '--listen', '127.0.0.1:0', '--output', 'json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0)
        resolve({
          child,
          endpoint: (JSON.parse(out.slice(0, nl)) as { endpoint: string }).endpoint,
        });
    });
    child.on('exit', (code, signal) => {
      const e = new Error(`ferry cloud serve exited with ${code ?? signal}: ${err.slice(-4000)}`);
      reject(e);
    });
  });
}

function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Waits until the server has written at least `bytes` of some body under tmp/. */
async function receiving(dir: string, bytes: number): Promise<void> {
  const tmp = join(dir, 'state', 's3', 'tmp');
  for (let i = 0; i < 2000; i++) {
    for (const f of await readdir(tmp).catch(() => [] as string[])) {
      const s = await stat(join(tmp, f)).catch(() => undefined);
      if (s !== undefined && s.size >= bytes) return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('the upload never reached the server');
}

/** A body that sends `sent` bytes of `data` and then stalls (until the server dies). */
function stalling(data: Buffer, sent: number): Readable {
  let given = false;
  return new Readable({
    read() {
      if (!given) {
        given = true;
        for (let i = 0; i < sent; i += MiB) this.push(data.subarray(i, Math.min(sent, i + MiB)));
      }
      // …and nothing more.
    },
  });
}

const digest = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

async function body(s3: S3Client, key: string): Promise<Buffer | undefined> {
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  } catch (e) {
    if ((e as Error).name === 'NoSuchKey') return undefined;
    throw e;
  }
}

describe('s3: kill -9 mid-upload', () => {
  it('leaves objects absent or whole, never partial, and sweeps what was in flight', async () => {
    await withTempDir(async (dir) => {
      const old = pattern(4 * MiB, 11);
      const fresh = pattern(32 * MiB, 12);
      const big = [pattern(16 * MiB, 21), pattern(16 * MiB, 22), pattern(16 * MiB, 23)];
      let id = '';
      let server = await serve(dir);
      let s3 = s3Client(server.endpoint);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      await s3.send(new PutObjectCommand({ Bucket: B, Key: 'replaced', Body: old }));
      // Part 1 of a multipart upload is acknowledged; part 2 is cut off.
      const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'parted' }));
      const p1 = await s3.send(
        new UploadPartCommand({
          Bucket: B,
          Key: 'parted',
          UploadId: up.UploadId!,
          PartNumber: 1,
          Body: pattern(5 * MiB, 13),
        }),
      );

      // Overwrite and a new object, each stopped at 12 MiB of 32.
      const pending = [
        s3
          .send(
            new PutObjectCommand({
              Bucket: B,
              Key: 'replaced',
              Body: stalling(fresh, 12 * MiB),
              ContentLength: fresh.length,
            }),
          )
          .catch(() => undefined),
        s3
          .send(
            new PutObjectCommand({
              Bucket: B,
              Key: 'brand-new',
              Body: stalling(fresh, 12 * MiB),
              ContentLength: fresh.length,
            }),
          )
          .catch(() => undefined),
        s3
          .send(
            new UploadPartCommand({
              Bucket: B,
              Key: 'parted',
              UploadId: up.UploadId!,
              PartNumber: 2,
              Body: stalling(fresh, 12 * MiB),
              ContentLength: fresh.length,
            }),
          )
          .catch(() => undefined),
      ];
      await receiving(dir, 8 * MiB);
      await kill9(server.child);
      // The stalled clients never finish sending; their requests are simply dropped.
      void pending;

      server = await serve(dir);
      s3 = s3Client(server.endpoint);
      try {
        assert.equal(digest((await body(s3, 'replaced'))!), digest(old));
        assert.equal(await body(s3, 'brand-new'), undefined);
        const parts = await s3.send(
          new ListPartsCommand({ Bucket: B, Key: 'parted', UploadId: up.UploadId! }),
        );
        assert.deepEqual(
          parts.Parts?.map((p) => [p.PartNumber, p.ETag]),
          [[1, p1.ETag]],
        );
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: B }));
        assert.deepEqual(
          listed.Contents?.map((c) => [c.Key, c.Size]),
          [['replaced', old.length]],
        );
        // The temporary files are gone, and every stored blob belongs to something.
        assert.deepEqual(await readdir(join(dir, 'state', 's3', 'tmp')), []);
        const [bucketDir] = await readdir(join(dir, 'state', 's3', 'data'));
        const blobs = await readdir(join(dir, 'state', 's3', 'data', bucketDir!, 'blobs'));
        assert.equal(blobs.length, 2, 'the object and the acknowledged part');

        // A completion killed at an arbitrary moment: the object is absent or whole.
        id = (await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'completed' })))
          .UploadId!;
        const done = [];
        for (const [i, b] of big.entries()) {
          const r = await s3.send(
            new UploadPartCommand({
              Bucket: B,
              Key: 'completed',
              UploadId: id,
              PartNumber: i + 1,
              Body: b,
            }),
          );
          done.push({ PartNumber: i + 1, ETag: r.ETag! });
        }
        const completing = s3
          .send(
            new CompleteMultipartUploadCommand({
              Bucket: B,
              Key: 'completed',
              UploadId: id,
              MultipartUpload: { Parts: done },
            }),
          )
          .catch(() => undefined);
        await receiving(dir, 4 * MiB).catch(() => undefined);
        await kill9(server.child);
        void completing;
      } finally {
        await kill9(server.child);
      }

      server = await serve(dir);
      s3 = s3Client(server.endpoint);
      try {
        const got = await body(s3, 'completed');
        if (got !== undefined) assert.equal(digest(got), digest(Buffer.concat(big)));
        else {
          // Not completed: the upload and its parts are still there to complete again.
          const parts = await s3.send(
            new ListPartsCommand({ Bucket: B, Key: 'completed', UploadId: id }),
          );
          assert.equal(parts.Parts?.length, 3);
        }
        assert.equal(digest((await body(s3, 'replaced'))!), digest(old));
      } finally {
        await kill9(server.child);
      }
    });
  });
});
