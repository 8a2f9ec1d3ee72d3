/**
 * The AWS CLI (Debian's awscli 2.9 at /usr/bin/aws) against the endpoint:
 * `aws s3 cp` up (multipart above 8 MiB, payloads SHA-256 signed, parts with
 * Content-MD5) and down (ranged GETs in parallel) round-trips a file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { withCloud } from '../helpers/cloud.js';
import { withTempDir } from '../helpers/qemu.js';
import { pattern, s3Client } from '../helpers/s3.js';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const missing = existsSync(AWS) ? false : `${AWS} is not installed (Debian package awscli)`;

describe('s3: the AWS CLI', () => {
  it('round-trips a file with aws s3 cp (multipart up, ranged down)', {
    skip: missing,
  }, async () => {
    await withTempDir(async (home) => {
      await withCloud(async ({ url }) => {
        // A HOME of its own: no profile or config of the machine's user applies.
        const env = {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_PAGER: '',
        };
        const aws = (...args: string[]) =>
          run(AWS, ['--endpoint-url', url, ...args], { env, maxBuffer: 64 * 1024 * 1024 }).catch(
            (e: Error & { stderr?: string }) => {
              throw new Error(`aws ${args.join(' ')}: ${e.stderr ?? e.message}`);
            },
          );
        const data = pattern(20 * 1024 * 1024 + 12, 31);
        const src = join(home, 'image.raw');
        const back = join(home, 'back.raw');
        await writeFile(src, data);
        await aws('s3', 'mb', 's3://cli-bucket');
        await aws('s3', 'cp', '--no-progress', src, 's3://cli-bucket/images/image.raw');
        const head = await s3Client(url).send(
          new HeadObjectCommand({ Bucket: 'cli-bucket', Key: 'images/image.raw' }),
        );
        assert.equal(head.ContentLength, data.length);
        assert.match(head.ETag ?? '', /-3"$/, 'uploaded in 8 MiB parts');
        await aws('s3', 'cp', '--no-progress', 's3://cli-bucket/images/image.raw', back);
        assert.ok((await readFile(back)).equals(data));
        const listed = await aws('s3', 'ls', 's3://cli-bucket', '--recursive');
        assert.match(listed.stdout, new RegExp(`${data.length} images/image.raw`));
        await aws('s3', 'rm', 's3://cli-bucket/images/image.raw');
        const after = await aws('s3', 'ls', 's3://cli-bucket', '--recursive').catch(() => ({
          stdout: '',
        }));
        assert.equal(after.stdout.trim(), '');
      });
    });
  });
});
