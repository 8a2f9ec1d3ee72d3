import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { CloudService } from '../../src/cloud/index.js';
import {
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  credentialScope,
  signatureHex,
  signingKey,
  stringToSign,
} from '../../src/cloud/sigv4.js';
import { send, signRequest, TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';

/** A stand-in service that answers with what it was handed. */
function echo(name: string, protocol: CloudService['protocol'], maxBodyBytes = 1024): CloudService {
  return {
    name,
    protocol,
    maxBodyBytes,
    handler: async (r) => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(
        JSON.stringify({
          method: r.method,
          path: r.path,
          query: [...r.query],
          body: r.body.toString('utf8'),
          account: r.account,
          region: r.region,
          principal: r.principal,
          // Whether the server hashed the body before the handler (then its hash).
          hashedBefore: r.content?.hashed ?? null,
          sha256: r.content?.sha256Hex() ?? null,
        }),
      ),
    }),
  };
}

describe('cloud: SigV4', () => {
  it("computes the AWS test suite's get-vanilla signature", () => {
    const canonical = canonicalRequest({
      method: 'GET',
      uri: canonicalUri('/', 'service'),
      query: canonicalQuery([], false),
      headers: 'host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n',
      signedHeaders: ['host', 'x-amz-date'],
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    const key = signingKey(
      'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      '20150830',
      'us-east-1',
      'service',
    );
    const sig = signatureHex(
      key,
      stringToSign(
        '20150830T123600Z',
        credentialScope('20150830', 'us-east-1', 'service'),
        canonical,
      ),
    );
    assert.equal(sig, '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });

  it('canonical URIs: S3 signs the path as sent, other services normalise and encode it again', () => {
    assert.equal(canonicalUri('/b/a%20b//./c', 's3'), '/b/a%20b//./c');
    assert.equal(canonicalUri('/b/a%20b//./c/../d', 'ebs'), '/b/a%2520b/d');
    assert.equal(canonicalUri('', 'sts'), '/');
    assert.equal(
      canonicalQuery(
        [
          ['b', '2'],
          ['a', 'x y'],
          ['a', '!'],
          ['X-Amz-Signature', 'zz'],
        ],
        true,
      ),
      'a=%21&a=x%20y&b=2',
    );
  });

  it("accepts paths with encoded characters under the S3 rule and the other services' rule", async () => {
    await withCloud(async ({ url, endpoint }) => {
      endpoint.register(echo('s3', 'rest-xml'));
      endpoint.register(echo('ebs', 'rest-json'));
      const path = '/bucket/a%20key%2B%25/%C3%BC.txt';
      const s3 = await send(
        url,
        await signRequest(
          url,
          { method: 'GET', path, query: { 'list-type': '2', prefix: 'a b/' } },
          { service: 's3' },
        ),
      );
      assert.equal(s3.status, 200, s3.body);
      const seen = JSON.parse(s3.body);
      assert.equal(seen.path, '/bucket/a key+%/ü.txt');
      assert.deepEqual(seen.query, [
        ['list-type', '2'],
        ['prefix', 'a b/'],
      ]);
      assert.equal(seen.principal, 'arn:aws:iam::000000000000:root');
      const ebs = await send(
        url,
        await signRequest(url, { method: 'PUT', path, body: 'block' }, { service: 'ebs' }),
      );
      assert.equal(ebs.status, 200, ebs.body);
      assert.equal(JSON.parse(ebs.body).body, 'block');
      // Signing an S3 path with the other rule (encoded twice) does not match.
      const wrongRule = await send(
        url,
        await signRequest(url, { method: 'GET', path }, { service: 's3', uriEscapePath: true }),
      );
      assert.equal(wrongRule.status, 403);
      assert.match(
        wrongRule.body,
        /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>SignatureDoesNotMatch<\/Code><Message>[^<]+<\/Message><RequestId>[^<]+<\/RequestId><\/Error>$/,
      );
      const wrongRuleEbs = await send(
        url,
        await signRequest(
          url,
          { method: 'PUT', path, body: 'block' },
          { service: 'ebs', uriEscapePath: false },
        ),
      );
      assert.equal(wrongRuleEbs.status, 403);
      assert.equal(wrongRuleEbs.headers['x-amzn-errortype'], 'InvalidSignatureException');
      assert.ok(typeof JSON.parse(wrongRuleEbs.body).message === 'string');
    });
  });

  it("checks x-amz-content-sha256 (UNSIGNED-PAYLOAD too), the body cap and S3's clock rule", async () => {
    await withCloud(async ({ url, endpoint }) => {
      endpoint.register(echo('s3', 'rest-xml', 16));
      const unsigned = await signRequest(
        url,
        {
          method: 'PUT',
          path: '/b/k',
          headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
          body: 'hello',
        },
        { service: 's3' },
      );
      const unsignedAnswer = await send(url, unsigned);
      assert.equal(unsignedAnswer.status, 200);
      // Not signed: the server left the body unhashed; the handler's hash is right.
      const seen = JSON.parse(unsignedAnswer.body) as { hashedBefore: boolean; sha256: string };
      assert.equal(seen.hashedBefore, false);
      assert.equal(seen.sha256, createHash('sha256').update('hello').digest('hex'));
      // The payload is not signed, so another body still passes.
      assert.equal((await send(url, { ...unsigned, body: 'other' })).status, 200);
      const hashed = await signRequest(
        url,
        {
          method: 'PUT',
          path: '/b/k',
          headers: {
            'x-amz-content-sha256':
              '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
          },
          body: 'hello',
        },
        { service: 's3' },
      );
      const hashedAnswer = await send(url, hashed);
      assert.equal(hashedAnswer.status, 200);
      assert.equal((JSON.parse(hashedAnswer.body) as { hashedBefore: boolean }).hashedBefore, true);
      const mismatch = await send(url, { ...hashed, body: 'jello' });
      assert.equal(mismatch.status, 400);
      assert.match(mismatch.body, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
      const big = await send(
        url,
        await signRequest(
          url,
          { method: 'PUT', path: '/b/k', body: 'x'.repeat(17) },
          { service: 's3' },
        ),
      );
      assert.equal(big.status, 400);
      assert.match(big.body, /<Code>EntityTooLarge<\/Code>/);
      const old = await send(
        url,
        await signRequest(
          url,
          { method: 'GET', path: '/b/k' },
          { service: 's3', signingDate: new Date(Date.now() - 20 * 60_000) },
        ),
      );
      assert.equal(old.status, 403);
      assert.match(old.body, /<Code>RequestTimeTooSkewed<\/Code>/);
      const unknownKey = await send(
        url,
        await signRequest(
          url,
          { method: 'GET', path: '/b/k' },
          { service: 's3', credentials: { accessKeyId: 'AKIAWHO', secretAccessKey: 'x' } },
        ),
      );
      assert.equal(unknownKey.status, 403);
      assert.match(unknownKey.body, /<Code>InvalidAccessKeyId<\/Code>/);
      const anonymous = await send(url, { method: 'GET', path: '/b/k' });
      assert.equal(anonymous.status, 403);
      assert.match(anonymous.body, /<Code>AccessDenied<\/Code>/);
    });
  });

  it('accepts presigned URLs until they expire (the S3 presigner, and a hand-presigned STS call)', async () => {
    await withCloud(async ({ url, endpoint, clock }) => {
      endpoint.register(echo('s3', 'rest-xml'));
      const client = new S3Client({
        endpoint: url,
        region: 'eu-north-1',
        forcePathStyle: true,
        credentials: TEST_CREDENTIALS,
      });
      const signed = await getSignedUrl(
        client,
        new GetObjectCommand({ Bucket: 'images', Key: 'disk 1.raw' }),
        { expiresIn: 60 },
      );
      assert.match(signed, /X-Amz-Signature=[0-9a-f]{64}/);
      const ok = await fetch(signed);
      assert.equal(ok.status, 200);
      const seen = (await ok.json()) as { path: string; region: string };
      assert.equal(seen.path, '/images/disk 1.raw');
      assert.equal(seen.region, 'eu-north-1');

      const tampered = await fetch(signed.replace('disk%201.raw', 'disk%202.raw'));
      assert.equal(tampered.status, 403);
      assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);

      clock.offset = 61_000;
      const late = await fetch(signed);
      assert.equal(late.status, 403);
      const text = await late.text();
      assert.match(text, /<Code>AccessDenied<\/Code><Message>Request has expired<\/Message>/);
      clock.offset = 0;

      const sts = await signRequest(
        url,
        { method: 'GET', path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' } },
        { service: 'sts', presignExpiresIn: 30 },
      );
      const identity = await send(url, sts);
      assert.equal(identity.status, 200, identity.body);
      assert.match(identity.body, /<Account>000000000000<\/Account>/);
      clock.offset = 31_000;
      const expired = await send(url, sts);
      assert.equal(expired.status, 403);
      assert.match(
        expired.body,
        /<Code>AccessDenied<\/Code><Message>Request has expired<\/Message>/,
      );
      clock.offset = 0;
      const week = await send(url, { ...sts, query: { ...sts.query, 'X-Amz-Expires': '604801' } });
      assert.equal(week.status, 400);
      assert.match(
        week.body,
        /<Code>IncompleteSignature<\/Code><Message>X-Amz-Expires must be less than a week/,
      );
    });
  });
  it('answers malformed authentication with 4xx codes, never a 500', async () => {
    await withCloud(async ({ url, log }) => {
      const amzDate = new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d{3}/, '');
      const day = amzDate.slice(0, 8);
      const cases: Array<{
        path?: string;
        query?: Record<string, string>;
        headers?: Record<string, string>;
      }> = [
        { headers: { authorization: 'AWS test:c2lnbmF0dXJl' } },
        { headers: { authorization: 'AWS4-HMAC-SHA256 Credential=test' } },
        {
          headers: {
            authorization: `AWS4-HMAC-SHA256 Credential=test/${day}/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00`,
          },
        },
        {
          headers: {
            authorization: `AWS4-HMAC-SHA256 Credential=test/${day}/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00`,
            'x-amz-date': 'yesterday',
          },
        },
        {
          headers: {
            authorization: `AWS4-HMAC-SHA256 Credential=test/19990101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00`,
            'x-amz-date': amzDate,
          },
        },
        {
          headers: {
            authorization: `AWS4-HMAC-SHA256 Credential=test/${day}/us-east-1/sts/aws4_request, SignedHeaders=x-amz-date, Signature=00`,
            'x-amz-date': amzDate,
          },
        },
        {
          query: {
            'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
            'X-Amz-Credential': `test/${day}/us-east-1/s3/aws4_request`,
          },
        },
        {
          query: {
            'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
            'X-Amz-Credential': `test/${day}/us-east-1/s3/aws4_request`,
            'X-Amz-Date': amzDate,
            'X-Amz-Expires': 'soon',
            'X-Amz-SignedHeaders': 'host',
            'X-Amz-Signature': '00',
          },
        },
        { path: '/%zz' },
      ];
      for (const c of cases) {
        const r = await send(url, {
          method: 'GET',
          path: c.path ?? '/',
          ...(c.query ? { query: c.query } : {}),
          ...(c.headers ? { headers: c.headers } : {}),
        });
        assert.ok(
          r.status >= 400 && r.status < 500,
          `${JSON.stringify(c)} -> ${r.status} ${r.body}`,
        );
        assert.match(r.body, /<Code>[A-Za-z]+<\/Code>/);
      }
      assert.ok(!log.some((l) => l.startsWith('internal error')), log.join('\n'));
    });
  });
});
