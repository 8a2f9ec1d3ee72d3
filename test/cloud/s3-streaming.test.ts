import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AwsChunkedDecoder } from '../../src/cloud/aws-chunked.js';
import { signingKey } from '../../src/cloud/sigv4.js';
import { signRequest, withCloud } from '../helpers/cloud.js';
import { md5hex, pattern, s3Client, sendRaw, sha256hex, signedChunks } from '../helpers/s3.js';

const B = 'streaming-bucket';
const MiB = 1024 * 1024;

/** AWS's published example of a chunk-signed upload (SigV4 streaming, 64 KiB + 1 KiB of 'a'). */
const EXAMPLE = {
  key: signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3'),
  amzDate: '20130524T000000Z',
  scope: '20130524/us-east-1/s3/aws4_request',
  seed: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
  chunks: [
    [65536, 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648'],
    [1024, '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497'],
    [0, 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9'],
  ] as const,
};

function exampleBody(order: readonly number[] = [0, 1, 2], flip = -1): Buffer {
  const parts: Buffer[] = [];
  for (const i of order) {
    const [size, sig] = EXAMPLE.chunks[i]!;
    const data = Buffer.alloc(size, 'a');
    if (i === flip) data[10] = 0x62;
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`), data);
    parts.push(Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function decode(body: Buffer, step: number, decodedLength = 66560): Promise<Buffer> {
  const d = new AwsChunkedDecoder({
    trailer: false,
    decodedLength,
    signing: {
      key: EXAMPLE.key,
      amzDate: EXAMPLE.amzDate,
      scope: EXAMPLE.scope,
      seed: EXAMPLE.seed,
    },
  });
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    d.on('data', (c: Buffer) => out.push(c));
    d.on('end', () => resolve(Buffer.concat(out)));
    d.on('error', reject);
    for (let i = 0; i < body.length; i += step) d.write(body.subarray(i, i + step));
    d.end();
  });
}

async function absent(s3: S3Client, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: B, Key: key }));
    return false;
  } catch (e) {
    return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;
  }
}

/** A hand-built STREAMING-AWS4-HMAC-SHA256-PAYLOAD PutObject; `corrupt` changes a byte after signing. */
async function chunkSignedPut(
  url: string,
  key: string,
  data: Buffer,
  corrupt = false,
  trailer?: { name: string; value: string },
) {
  const headersFor = (length: number) => ({
    'x-amz-content-sha256':
      trailer === undefined
        ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
        : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': String(data.length),
    'content-length': String(length),
    ...(trailer === undefined ? {} : { 'x-amz-trailer': trailer.name }),
  });
  // Signatures have a fixed length, so the encoded length is known before signing.
  const probe = signedChunks(
    data,
    64 * 1024,
    {
      secret: 'test',
      date: '20000101',
      amzDate: '20000101T000000Z',
      region: 'us-east-1',
      seed: '0'.repeat(64),
    },
    trailer,
  );
  const signed = await signRequest(
    url,
    { method: 'PUT', path: `/${B}/${key}`, headers: headersFor(probe.length) },
    { service: 's3' },
  );
  const amzDate = signed.headers!['x-amz-date']!;
  const seed = /Signature=([0-9a-f]{64})/.exec(signed.headers!.authorization!)![1]!;
  const body = signedChunks(
    data,
    64 * 1024,
    {
      secret: 'test',
      date: amzDate.slice(0, 8),
      amzDate,
      region: 'us-east-1',
      seed,
    },
    trailer,
  );
  assert.equal(body.length, probe.length);
  if (corrupt) body[body.length - 200] = body[body.length - 200]! ^ 1;
  return sendRaw(url, { method: 'PUT', path: signed.path, headers: signed.headers!, body });
}

describe('s3: streamed bodies', () => {
  it('decodes and verifies AWS’s chunk-signed example, however the bytes are split', async () => {
    const body = exampleBody();
    for (const step of [1, 7, 4096, 65600, body.length]) {
      const out = await decode(body, step);
      assert.ok(out.equals(Buffer.alloc(66560, 'a')), `step ${step}`);
    }
    await assert.rejects(decode(exampleBody([0, 1, 2], 1), 1000), { kind: 'bad-signature' });
    await assert.rejects(decode(exampleBody([1, 0, 2]), 1000), { kind: 'bad-signature' });
    await assert.rejects(decode(exampleBody([0, 1]), 1000), { code: 'IncompleteBody' });
    await assert.rejects(decode(body, 1000, 66561), { code: 'IncompleteBody' });
    await assert.rejects(decode(Buffer.from('zz;chunk-signature=00\r\n'), 10), {
      code: 'InvalidRequest',
    });
  });

  it('accepts a chunk-signed upload and refuses one with a bad chunk signature, which never appears', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const data = pattern(300_000, 9);
      const ok = await chunkSignedPut(url, 'chunked', data);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.headers.etag, `"${md5hex(data)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'chunked' }));
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data));
      const bad = await chunkSignedPut(url, 'tampered', data, true);
      assert.equal(bad.status, 403);
      assert.match(bad.body, /<Code>SignatureDoesNotMatch<\/Code>/);
      assert.ok(await absent(s3, 'tampered'));
      // Signed chunks with a signed checksum trailer: right, then wrong.
      const crc = createHash('sha256').update(data).digest('base64');
      const withTrailer = await chunkSignedPut(url, 'trailed', data, false, {
        name: 'x-amz-checksum-sha256',
        value: crc,
      });
      assert.equal(withTrailer.status, 200, withTrailer.body);
      const wrongSum = await chunkSignedPut(url, 'trailed-wrong', data, false, {
        name: 'x-amz-checksum-sha256',
        value: createHash('sha256').update('other').digest('base64'),
      });
      assert.equal(wrongSum.status, 400);
      assert.match(wrongSum.body, /<Code>BadDigest<\/Code>/);
      assert.ok(await absent(s3, 'trailed-wrong'));
    });
  });

  it('verifies the trailing checksum of STREAMING-UNSIGNED-PAYLOAD-TRAILER (the SDK’s streamed uploads)', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      // The SDK sends a stream body aws-chunked with a CRC32 trailer.
      const data = pattern(200_000, 3);
      const put = await s3.send(
        new PutObjectCommand({
          Bucket: B,
          Key: 'sdk-stream',
          Body: Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]),
          ContentLength: data.length,
        }),
      );
      assert.equal(put.ETag, `"${md5hex(data)}"`);
      assert.ok(put.ChecksumCRC32);
      // By hand: the same framing with a wrong checksum in the trailer.
      const body = Buffer.concat([
        Buffer.from(`${(5).toString(16)}\r\nhello\r\n0\r\n`),
        Buffer.from('x-amz-checksum-crc32:AAAAAA==\r\n\r\n'),
      ]);
      const headers = {
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'content-encoding': 'aws-chunked',
        'x-amz-decoded-content-length': '5',
        'x-amz-trailer': 'x-amz-checksum-crc32',
        'content-length': String(body.length),
      };
      const signed = await signRequest(
        url,
        { method: 'PUT', path: `/${B}/bad-trailer`, headers },
        { service: 's3' },
      );
      const res = await sendRaw(url, {
        method: 'PUT',
        path: signed.path,
        headers: signed.headers!,
        body,
      });
      assert.equal(res.status, 400);
      assert.match(res.body, /<Code>BadDigest<\/Code>/);
      assert.ok(await absent(s3, 'bad-trailer'));
      // The right CRC32 of "hello" is accepted.
      const good = Buffer.from(body.toString('latin1').replace('AAAAAA==', 'NhCmhg=='), 'latin1');
      const again = await signRequest(
        url,
        { method: 'PUT', path: `/${B}/good-trailer`, headers },
        { service: 's3' },
      );
      const ok = await sendRaw(url, {
        method: 'PUT',
        path: again.path,
        headers: again.headers!,
        body: good,
      });
      assert.equal(ok.status, 200, ok.body);
      const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'good-trailer' }));
      assert.equal(await got.Body!.transformToString(), 'hello');
    });
  });

  it('streams a 160 MiB object up and down while the process RSS stays bounded', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const size = 160 * MiB;
      const block = pattern(MiB, 5);
      const up = createHash('sha256');
      async function* source() {
        for (let i = 0; i < size / MiB; i++) {
          // Each MiB differs (its index), so nothing is deduplicated by accident.
          const b = Buffer.from(block);
          b.writeUInt32LE(i, 0);
          up.update(b);
          yield b;
        }
      }
      // A small round trip first, so that the SDK's lazily loaded code is not counted.
      await s3.send(
        new PutObjectCommand({
          Bucket: B,
          Key: 'warm-up',
          Body: Readable.from([block, block]),
          ContentLength: 2 * MiB,
        }),
      );
      const warm = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'warm-up' }));
      for await (const _ of warm.Body as AsyncIterable<Buffer>);
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 10);
      try {
        const put = await s3.send(
          new PutObjectCommand({
            Bucket: B,
            Key: 'huge',
            Body: Readable.from(source()),
            ContentLength: size,
          }),
        );
        assert.match(put.ETag ?? '', /^"[0-9a-f]{32}"$/);
        const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'huge' }));
        assert.equal(got.ContentLength, size);
        const down = createHash('sha256');
        let received = 0;
        for await (const chunk of got.Body as AsyncIterable<Buffer>) {
          down.update(chunk);
          received += chunk.length;
        }
        assert.equal(received, size);
        assert.equal(down.digest('hex'), up.digest('hex'));
      } finally {
        clearInterval(sampler);
      }
      const growth = peak - before;
      assert.ok(growth < size / 3, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    });
  });

  it('discards the body of a client that goes away mid-upload, as a client error', async () => {
    await withCloud(async ({ url, dir, log }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const signed = await signRequest(
        url,
        {
          method: 'PUT',
          path: `/${B}/abandoned`,
          headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(MiB) },
        },
        { service: 's3' },
      );
      const u = new URL(url);
      const socket = connect(Number(u.port), u.hostname);
      await new Promise((r) => socket.once('connect', r));
      let head = `PUT ${signed.path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(signed.headers!)) head += `${k}: ${v}\r\n`;
      socket.write(`${head}\r\n`);
      socket.write(pattern(200_000));
      const tmp = join(dir, 'state', 's3', 'tmp');
      for (let i = 0; i < 400 && (await readdir(tmp)).length === 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      socket.destroy();
      for (let i = 0; i < 400 && (await readdir(tmp)).length > 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(await readdir(tmp), []);
      assert.ok(await absent(s3, 'abandoned'));
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(
        log.some((l) => /PUT \/streaming-bucket\/abandoned s3 400 IncompleteBody/.test(l)),
        log.join('\n'),
      );
      assert.ok(!log.some((l) => l.startsWith('internal error')), log.join('\n'));
    });
  });

  it('answers Expect: 100-continue only when the body is wanted', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const u = new URL(url);
      const put = async (bucket: string) => {
        const body = pattern(64 * 1024);
        const signed = await signRequest(
          url,
          {
            method: 'PUT',
            path: `/${bucket}/expected`,
            headers: {
              'x-amz-content-sha256': sha256hex(body),
              'content-length': String(body.length),
            },
          },
          { service: 's3' },
        );
        return new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
          let continued = false;
          const r = httpRequest(
            {
              host: u.hostname,
              port: u.port,
              method: 'PUT',
              path: signed.path,
              headers: { ...signed.headers, expect: '100-continue' },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
            },
          );
          r.on('continue', () => {
            continued = true;
            r.end(body);
          });
          r.on('error', reject);
        });
      };
      assert.deepEqual(await put('no-such-bucket-100'), { status: 404, continued: false });
      assert.deepEqual(await put(B), { status: 200, continued: true });
      assert.equal(await absent(s3, 'expected'), false);
    });
  });

  it('refuses hostile XML bodies (entities, deep nesting) as MalformedXML', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      for (const xml of [
        `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>`,
        `${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}`,
        '<Delete><Object><Key>x</Key></Object>',
      ]) {
        const body = Buffer.from(xml);
        const signed = await signRequest(
          url,
          {
            method: 'POST',
            path: `/${B}`,
            query: { delete: '' },
            headers: {
              'x-amz-content-sha256': sha256hex(body),
              'content-md5': createHash('md5').update(body).digest('base64'),
              'content-length': String(body.length),
            },
          },
          { service: 's3' },
        );
        const res = await sendRaw(url, {
          method: 'POST',
          path: `${signed.path}?delete=`,
          headers: signed.headers!,
          body,
        });
        assert.equal(res.status, 400, res.body);
        assert.match(res.body, /<Code>MalformedXML<\/Code>/);
      }
    });
  });

  it('refuses x-amz-content-sha256 values it does not know, and requires one on header-signed requests', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const odd = await signRequest(
        url,
        { method: 'PUT', path: `/${B}/odd`, headers: { 'x-amz-content-sha256': 'WHATEVER' } },
        { service: 's3' },
      );
      const res = await sendRaw(url, {
        method: 'PUT',
        path: odd.path,
        headers: odd.headers!,
        body: Buffer.from(''),
      });
      assert.equal(res.status, 400);
      assert.ok(await absent(s3, 'odd'));
    });
  });
});
