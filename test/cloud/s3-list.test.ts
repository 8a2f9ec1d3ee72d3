import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CreateBucketCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { withCloud } from '../helpers/cloud.js';
import { s3Client, s3Error } from '../helpers/s3.js';

const B = 'listing-bucket';

/** 30 folders of 40 files, 350 top-level keys and a few whose UTF-16 and UTF-8 orders differ. */
function keys(): string[] {
  const out: string[] = [];
  for (let d = 0; d < 30; d++) for (let f = 0; f < 40; f++) out.push(`d${d}/f${f}`);
  for (let t = 0; t < 350; t++) out.push(`top-${String(t).padStart(4, '0')}`);
  out.push('z\u{1F600}', 'z\uE000', 'z\uFFFD', 'za');
  return out;
}

/** Byte order of UTF-8, which is how S3 lists. */
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function fill(s3: S3Client, all: readonly string[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 12 }, async () => {
      while (next < all.length) {
        const key = all[next++]!;
        await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: key }));
      }
    }),
  );
}

async function pages(
  s3: S3Client,
  input: { Prefix?: string; Delimiter?: string; MaxKeys?: number; StartAfter?: string },
): Promise<ListObjectsV2CommandOutput[]> {
  const out: ListObjectsV2CommandOutput[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: B,
        ...input,
        ...(token === undefined ? {} : { ContinuationToken: token }),
      }),
    );
    out.push(page);
    token = page.NextContinuationToken;
    assert.equal(page.IsTruncated, token !== undefined);
    assert.ok(out.length < 2000, 'paging does not end');
  } while (token !== undefined);
  return out;
}

describe('s3: listing', () => {
  it('pages ListObjectsV2 over more than 1000 keys, with and without a delimiter', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const all = keys();
      await fill(s3, all);
      const sorted = [...all].sort(utf8Order);

      // Default page size is 1000.
      const flat = await pages(s3, {});
      assert.deepEqual(
        flat.map((p) => p.KeyCount),
        [1000, all.length - 1000],
      );
      assert.deepEqual(
        flat.flatMap((p) => p.Contents?.map((c) => c.Key) ?? []),
        sorted,
      );
      const first = flat[0]!.Contents![0]!;
      assert.equal(first.Size, Buffer.byteLength(first.Key!));
      assert.match(first.ETag ?? '', /^"[0-9a-f]{32}"$/);

      // With a delimiter, folders fold into common prefixes, never split across pages twice.
      const folded = await pages(s3, { Delimiter: '/', MaxKeys: 7 });
      const prefixes = folded.flatMap((p) => p.CommonPrefixes?.map((c) => c.Prefix) ?? []);
      const top = folded.flatMap((p) => p.Contents?.map((c) => c.Key) ?? []);
      assert.deepEqual(prefixes, Array.from({ length: 30 }, (_, d) => `d${d}/`).sort(utf8Order));
      assert.deepEqual(
        top,
        sorted.filter((k) => !k.includes('/')),
      );
      for (const p of folded) assert.ok((p.KeyCount ?? 0) <= 7);
      assert.equal(
        folded.reduce((n, p) => n + (p.KeyCount ?? 0), 0),
        30 + 354,
      );

      // Prefix and delimiter together.
      const d1 = await pages(s3, { Prefix: 'd1', Delimiter: '/' });
      assert.deepEqual(
        d1.flatMap((p) => p.CommonPrefixes?.map((c) => c.Prefix) ?? []),
        ['d1/', 'd10/', 'd11/', 'd12/', 'd13/', 'd14/', 'd15/', 'd16/', 'd17/', 'd18/', 'd19/'],
      );
      const inside = await pages(s3, { Prefix: 'd7/', MaxKeys: 15 });
      assert.deepEqual(
        inside.flatMap((p) => p.Contents?.map((c) => c.Key) ?? []),
        sorted.filter((k) => k.startsWith('d7/')),
      );
      assert.equal(inside.length, 3);

      // StartAfter.
      const after = await s3.send(
        new ListObjectsV2Command({ Bucket: B, StartAfter: 'top-0347', MaxKeys: 3 }),
      );
      assert.deepEqual(
        after.Contents?.map((c) => c.Key),
        ['top-0348', 'top-0349', 'za'],
      );
      assert.equal(after.StartAfter, 'top-0347');

      const none = await s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 0 }));
      assert.equal(none.KeyCount, 0);
      assert.equal(none.IsTruncated, false);
    });
  });

  it('refuses continuation tokens that were forged, altered or issued for another bucket', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      await s3.send(new CreateBucketCommand({ Bucket: 'other-listing' }));
      for (const k of ['a', 'b', 'c']) {
        await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: k }));
        await s3.send(new PutObjectCommand({ Bucket: 'other-listing', Key: k, Body: k }));
      }
      const page = await s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 1 }));
      const token = page.NextContinuationToken!;
      assert.ok(token);
      const next = await s3.send(
        new ListObjectsV2Command({ Bucket: B, MaxKeys: 1, ContinuationToken: token }),
      );
      assert.deepEqual(
        next.Contents?.map((c) => c.Key),
        ['b'],
      );
      assert.equal(next.ContinuationToken, token);
      const [body, mac] = token.split('.') as [string, string];
      const forgedBody = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), a: 'b' }),
      ).toString('base64url');
      for (const bad of [
        'garbage',
        `${forgedBody}.${mac}`,
        `${body}.${Buffer.alloc(16).toString('base64url')}`,
      ])
        await assert.rejects(
          s3.send(new ListObjectsV2Command({ Bucket: B, ContinuationToken: bad })),
          s3Error('InvalidArgument', 400),
        );
      await assert.rejects(
        s3.send(new ListObjectsV2Command({ Bucket: 'other-listing', ContinuationToken: token })),
        s3Error('InvalidArgument', 400),
      );
    });
  });

  it('answers ListObjects (V1) with markers, and URL-encodes keys when asked', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      for (const k of ['a/', 'a/1', 'a/2', 'b', 'c d', 'e/1'])
        await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: k }));
      const v1 = await s3.send(new ListObjectsCommand({ Bucket: B, Delimiter: '/', MaxKeys: 2 }));
      assert.deepEqual(
        v1.CommonPrefixes?.map((c) => c.Prefix),
        ['a/'],
      );
      assert.deepEqual(
        v1.Contents?.map((c) => c.Key),
        ['b'],
      );
      assert.equal(v1.IsTruncated, true);
      assert.equal(v1.NextMarker, 'b');
      const v1b = await s3.send(
        new ListObjectsCommand({ Bucket: B, Delimiter: '/', Marker: v1.NextMarker! }),
      );
      assert.deepEqual(
        v1b.Contents?.map((c) => c.Key),
        ['c d'],
      );
      assert.deepEqual(
        v1b.CommonPrefixes?.map((c) => c.Prefix),
        ['e/'],
      );
      // A key that ends in the delimiter, as a marker, is a key: what follows it is listed.
      const under = await s3.send(
        new ListObjectsCommand({ Bucket: B, Prefix: 'a/', Delimiter: '/', Marker: 'a/' }),
      );
      assert.deepEqual(
        under.Contents?.map((c) => c.Key),
        ['a/1', 'a/2'],
      );
      const encoded = await s3.send(
        new ListObjectsV2Command({ Bucket: B, Prefix: 'c', EncodingType: 'url' }),
      );
      assert.equal(encoded.EncodingType, 'url');
      assert.deepEqual(
        encoded.Contents?.map((c) => c.Key),
        ['c+d'],
      );
      await assert.rejects(
        s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: -1 })),
        s3Error('InvalidArgument', 400),
      );
    });
  });
});
