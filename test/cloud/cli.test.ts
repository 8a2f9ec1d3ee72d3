import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CreateKeyCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { CLI, runCli } from '../helpers/cli.js';
import { TEST_CREDENTIALS } from '../helpers/cloud.js';
import { withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);

/** Starts `ferry cloud serve` and resolves with its first stdout line once it is serving. */
function serve(
  args: string[],
): Promise<{ child: ChildProcess; first: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'cloud', 'serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, first: out.slice(0, nl), output: () => out });
    });
    child.on('exit', (code) => reject(new Error(`ferry cloud serve exited with ${code}: ${err}`)));
  });
}

function stopped(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

const awsCli = spawnSync('aws', ['--version'], { encoding: 'utf8' }).status === 0;

describe('cloud: ferry cloud serve and reset', () => {
  it('serves until killed -9, and what it acknowledged is there after a restart', async () => {
    await withTempDir(async (dir) => {
      const first = await serve(['--data', dir, '--listen', '127.0.0.1:0', '--output', 'json']);
      const info = JSON.parse(first.first) as {
        endpoint: string;
        defaultCredentials: { accessKeyId: string };
      };
      assert.match(info.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(info.defaultCredentials.accessKeyId, 'test');
      const kms = new KMSClient({
        endpoint: info.endpoint,
        region: 'sa-east-1',
        credentials: TEST_CREDENTIALS,
      });
      const keys = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          kms.send(new CreateKeyCommand({ Description: `k${i}` })),
        ),
      );
      await stopped(first.child, 'SIGKILL');

      const second = await serve(['--data', dir, '--listen', '127.0.0.1:0']);
      try {
        assert.match(second.first, /^ferry cloud: http:\/\/127\.0\.0\.1:\d+ /);
        const endpoint = /(http:\/\/[\d.:]+)/.exec(second.first)![1]!;
        const again = new KMSClient({
          endpoint,
          region: 'sa-east-1',
          credentials: TEST_CREDENTIALS,
        });
        for (const k of keys) {
          const d = await again.send(new DescribeKeyCommand({ KeyId: k.KeyMetadata!.KeyId! }));
          assert.equal(d.KeyMetadata?.Description, k.KeyMetadata?.Description);
        }
        const me = await new STSClient({
          endpoint,
          region: 'us-east-1',
          credentials: TEST_CREDENTIALS,
        }).send(new GetCallerIdentityCommand({}));
        assert.equal(me.Account, '000000000000');
      } finally {
        await stopped(second.child, 'SIGTERM');
      }
      const reset = await runCli(['cloud', 'reset', '--data', dir, '--output', 'json']);
      assert.equal(reset.code, 0, reset.stderr);
      assert.deepEqual(JSON.parse(reset.stdout), { reset: dir });
      assert.deepEqual(await readdir(dir), []);
    });
  });

  it('prints the endpoint, the default credentials and an aws example; refuses 0.0.0.0 with them', async () => {
    await withTempDir(async (dir) => {
      const s = await serve(['--data', dir, '--listen', '127.0.0.1:0']);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const out = s.output();
      await stopped(s.child, 'SIGTERM');
      assert.match(out, /AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test/);
      assert.match(out, /aws --endpoint-url http:\/\/127\.0\.0\.1:\d+ sts get-caller-identity/);
      const refused = await runCli([
        'cloud',
        'serve',
        '--data',
        dir,
        '--listen',
        '0.0.0.0:0',
        '--output',
        'json',
      ]);
      assert.equal(refused.code, 1);
      assert.equal(JSON.parse(refused.stdout).error.code, 'FERRY_CLOUD_UNSAFE_LISTEN');
      const usage = await runCli(['cloud', 'fly']);
      assert.equal(usage.code, 2);
    });
  });

  it('answers the AWS CLI (sts, kms, ec2)', {
    skip: awsCli ? false : 'aws (AWS CLI) is not on PATH',
  }, async () => {
    await withTempDir(async (dir) => {
      const s = await serve(['--data', dir, '--listen', '127.0.0.1:0', '--output', 'json']);
      try {
        const { endpoint } = JSON.parse(s.first) as { endpoint: string };
        const inherited = Object.fromEntries(
          Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')),
        );
        const env = {
          ...inherited,
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_CONFIG_FILE: '/dev/null',
          AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
          AWS_PAGER: '',
        };
        const aws = async (...args: string[]) =>
          JSON.parse(
            (await run('aws', ['--endpoint-url', endpoint, '--output', 'json', ...args], { env }))
              .stdout,
          );
        const me = await aws('sts', 'get-caller-identity');
        assert.equal(me.Account, '000000000000');
        assert.equal(me.Arn, 'arn:aws:iam::000000000000:root');
        const key = await aws('kms', 'describe-key', '--key-id', 'alias/aws/ebs');
        assert.equal(key.KeyMetadata.KeyManager, 'AWS');
        const regions = await aws('ec2', 'describe-regions', '--region-names', 'eu-west-1');
        assert.deepEqual(
          regions.Regions.map((r: { RegionName: string }) => r.RegionName),
          ['eu-west-1'],
        );
        await assert.rejects(
          run('aws', ['--endpoint-url', endpoint, 'sts', 'get-caller-identity'], {
            env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' },
          }),
          (e: Error & { stderr?: string }) => /SignatureDoesNotMatch/.test(e.stderr ?? ''),
        );
      } finally {
        await stopped(s.child, 'SIGTERM');
      }
    });
  });
});
