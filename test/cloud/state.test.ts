import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  KMSClient,
  ListKeysCommand,
} from '@aws-sdk/client-kms';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { CloudEndpoint, isLoopback, parseCloudConfig, resetCloud } from '../../src/cloud/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { withTempDir } from '../helpers/qemu.js';

const config = {
  accounts: [{ id: '333333333333', roles: [{ name: 'deploy', trust: ['000000000000'] }] }],
};

describe('cloud: state, config, listen address', () => {
  it('keeps keys and sessions across a restart; reset wipes them and keeps the config', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'config.json'), JSON.stringify(config));
      let keyId = '';
      let temp = { accessKeyId: '', secretAccessKey: '', sessionToken: '' };
      await withCloud(
        async ({ url }) => {
          const kms = new KMSClient({
            endpoint: url,
            region: 'ca-central-1',
            credentials: TEST_CREDENTIALS,
          });
          keyId = (await kms.send(new CreateKeyCommand({ Description: 'kept' }))).KeyMetadata!
            .KeyId!;
          const sts = new STSClient({
            endpoint: url,
            region: 'us-east-1',
            credentials: TEST_CREDENTIALS,
          });
          const c = (
            await sts.send(
              new AssumeRoleCommand({
                RoleArn: 'arn:aws:iam::333333333333:role/deploy',
                RoleSessionName: 'kept',
              }),
            )
          ).Credentials!;
          temp = {
            accessKeyId: c.AccessKeyId!,
            secretAccessKey: c.SecretAccessKey!,
            sessionToken: c.SessionToken!,
          };
        },
        { dir },
      );
      const files = await readdir(join(dir, 'state', '000000000000', 'ca-central-1'));
      assert.deepEqual(files, ['kms.json']);
      await withCloud(
        async ({ url }) => {
          const kms = new KMSClient({
            endpoint: url,
            region: 'ca-central-1',
            credentials: TEST_CREDENTIALS,
          });
          const k = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
          assert.equal(k.KeyMetadata?.Description, 'kept');
          const me = await new STSClient({
            endpoint: url,
            region: 'us-east-1',
            credentials: temp,
          }).send(new GetCallerIdentityCommand({}));
          assert.equal(me.Account, '333333333333');
        },
        { dir },
      );
      await resetCloud(dir);
      assert.deepEqual(await readdir(dir), ['config.json']);
      await withCloud(
        async ({ url }) => {
          const kms = new KMSClient({
            endpoint: url,
            region: 'ca-central-1',
            credentials: TEST_CREDENTIALS,
            maxAttempts: 1,
          });
          assert.deepEqual((await kms.send(new ListKeysCommand({}))).Keys, []);
          await assert.rejects(
            new STSClient({
              endpoint: url,
              region: 'us-east-1',
              credentials: temp,
              maxAttempts: 1,
            }).send(new GetCallerIdentityCommand({})),
            { name: 'InvalidClientTokenId' },
          );
        },
        { dir },
      );
    });
  });

  it('applies concurrent changes to one document one after the other', async () => {
    await withCloud(async ({ url, dir }) => {
      const kms = new KMSClient({
        endpoint: url,
        region: 'us-east-2',
        credentials: TEST_CREDENTIALS,
      });
      await Promise.all(Array.from({ length: 12 }, () => kms.send(new CreateKeyCommand({}))));
      const doc = JSON.parse(
        await readFile(join(dir, 'state', '000000000000', 'us-east-2', 'kms.json'), 'utf8'),
      );
      assert.equal(doc.keys.length, 12);
      assert.equal((await kms.send(new ListKeysCommand({}))).Keys?.length, 12);
      const left = (await readdir(join(dir, 'state', '000000000000', 'us-east-2'))).filter((f) =>
        f.endsWith('.tmp'),
      );
      assert.deepEqual(left, []);
    });
  });

  it('validates config.json with coded errors', () => {
    const bad: Array<[string, RegExp]> = [
      ['{', /not JSON/],
      ['[]', /top level is not an object/],
      ['{"acounts": []}', /unknown key "acounts"/],
      ['{"accounts": [{"id": "12345"}]}', /12-digit/],
      ['{"accounts": [{"id": "111111111111", "accessKeyId": "AKIAONE1"}]}', /secretAccessKey/],
      [
        '{"accounts": [{"id": "111111111111", "accessKeyId": "test", "secretAccessKey": "x"}]}',
        /used twice/,
      ],
      ['{"accounts": [{"id": "111111111111"}, {"id": "111111111111"}]}', /listed twice/],
      [
        '{"accounts": [{"id": "111111111111", "roles": [{"name": "r", "trust": ["999999999999"]}]}]}',
        /not configured/,
      ],
      [
        '{"accounts": [{"id": "111111111111", "roles": [{"name": "r r", "trust": []}]}]}',
        /role name/,
      ],
      [
        '{"accounts": [{"id": "111111111111", "roles": [{"name": "r", "trust": [], "maxSessionSeconds": 60}]}]}',
        /maxSessionSeconds/,
      ],
      ['{"defaultCredentials": "yes"}', /defaultCredentials/],
    ];
    for (const [text, message] of bad) {
      assert.throws(
        () => parseCloudConfig(text, 'config.json'),
        (e: unknown) => isFerryError(e, 'FERRY_CLOUD_CONFIG_INVALID') && message.test(e.message),
        text,
      );
    }
    const ok = parseCloudConfig(
      '{"defaultCredentials": false, "accounts": [{"id": "111111111111", "accessKeyId": "test", "secretAccessKey": "x"}]}',
      'config.json',
    );
    assert.equal(ok.defaultCredentials, false);
  });

  it('refuses a non-loopback address while the default credentials are enabled', async () => {
    await withTempDir(async (dir) => {
      for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
        await assert.rejects(CloudEndpoint.open({ dataDir: dir, host, port: 0 }), (e: unknown) =>
          isFerryError(e, 'FERRY_CLOUD_UNSAFE_LISTEN'),
        );
      }
      assert.ok(
        isLoopback('127.0.0.1') &&
          isLoopback('::1') &&
          isLoopback('localhost') &&
          isLoopback('127.1.2.3'),
      );
      assert.ok(!isLoopback('10.0.0.1'));
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({
          defaultCredentials: false,
          accounts: [{ id: '444444444444', accessKeyId: 'AKIAOWN1', secretAccessKey: 'own' }],
        }),
      );
      const endpoint = await CloudEndpoint.open({ dataDir: dir, host: '0.0.0.0', port: 0 });
      assert.deepEqual(endpoint.accounts.ids(), ['444444444444']);
      assert.equal(endpoint.accounts.byAccessKey('test'), undefined);
    });
  });
});
