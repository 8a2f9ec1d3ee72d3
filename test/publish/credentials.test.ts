import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { isFerryError } from '../../src/errors/index.js';
import { cachedProvider, credentialProvider } from '../../src/publish/aws/credentials.js';
import type { AwsCredentials, CredentialProvider } from '../../src/publish/types.js';
import { TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { withTempDir } from '../helpers/qemu.js';

const PUBLISHER = '111111111111';
const AUDIT = '222222222222';
const config = {
  accounts: [
    {
      id: PUBLISHER,
      accessKeyId: 'AKIAPUBLISHER0001',
      secretAccessKey: 'publisher-secret',
      roles: [{ name: 'publisher', trust: ['000000000000'] }],
    },
    { id: AUDIT, roles: [{ name: 'audit', trust: [PUBLISHER] }] },
  ],
};
const ROLE = `arn:aws:iam::${PUBLISHER}:role/publisher`;
const source: CredentialProvider = () => Promise.resolve(TEST_CREDENTIALS);

async function whoAmI(url: string, credentials: CredentialProvider) {
  const sts = new STSClient({ endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1 });
  return sts.send(new GetCallerIdentityCommand({}));
}

describe('publish: AWS credentials', () => {
  it('static keys are used as given', async () => {
    await withCloud(
      async ({ url }) => {
        const p = credentialProvider(
          { kind: 'static', accessKeyId: 'AKIAPUBLISHER0001', secretAccessKey: 'publisher-secret' },
          { region: 'us-east-1' },
        );
        assert.equal((await whoAmI(url, p)).Account, PUBLISHER);
      },
      { config },
    );
  });

  it('assumes a role in another account through the endpoint, caches it and refreshes before expiry', async () => {
    await withCloud(
      async ({ url }) => {
        let clock = Date.now();
        const p = credentialProvider(
          { kind: 'role', roleArn: ROLE, sessionName: 'release-7' },
          { region: 'eu-west-1', endpoint: url, sourceCredentials: source, now: () => clock },
        );
        const [a, b] = await Promise.all([p(), p()]);
        assert.ok(a.sessionToken !== undefined && a.expiration !== undefined);
        assert.equal(a, b, 'concurrent callers share one AssumeRole');
        const me = await whoAmI(url, p);
        assert.equal(me.Account, PUBLISHER);
        assert.equal(me.Arn, `arn:aws:sts::${PUBLISHER}:assumed-role/publisher/release-7`);
        assert.equal(await p(), a, 'cached while fresh');
        // Four minutes before expiry is inside the 5-minute refresh margin.
        clock = a.expiration.getTime() - 4 * 60_000;
        const c = await p();
        assert.notEqual(c.accessKeyId, a.accessKeyId, 'refreshed');
        assert.equal((await whoAmI(url, p)).Account, PUBLISHER);
      },
      { config },
    );
  });

  it('a role that does not trust the caller is FERRY_AWS_CREDENTIALS', async () => {
    await withCloud(
      async ({ url }) => {
        const p = credentialProvider(
          { kind: 'role', roleArn: `arn:aws:iam::${AUDIT}:role/audit` },
          { region: 'us-east-1', endpoint: url, sourceCredentials: source },
        );
        await assert.rejects(p(), (e: unknown) => {
          assert.ok(isFerryError(e, 'FERRY_AWS_CREDENTIALS'), String(e));
          assert.match(e.message, /AccessDenied/);
          return true;
        });
      },
      { config },
    );
  });

  it('reads a profile from the shared files, including a role_arn profile assumed at the endpoint', async () => {
    await withTempDir(async (dir) => {
      await withCloud(
        async ({ url }) => {
          const credentials = join(dir, 'credentials');
          const cfg = join(dir, 'config');
          await writeFile(
            credentials,
            '[base]\naws_access_key_id = test\naws_secret_access_key = test\n' +
              `[pub]\naws_access_key_id = AKIAPUBLISHER0001\naws_secret_access_key = publisher-secret\n`,
          );
          await writeFile(
            cfg,
            `[profile chained]\nrole_arn = ${ROLE}\nsource_profile = base\nrole_session_name = from-profile\n`,
          );
          const iniFiles = { credentials, config: cfg };
          const pub = credentialProvider(
            { kind: 'profile', profile: 'pub' },
            { region: 'us-east-1', iniFiles },
          );
          assert.equal((await whoAmI(url, pub)).Account, PUBLISHER);
          const chained = credentialProvider(
            { kind: 'profile', profile: 'chained' },
            { region: 'us-east-1', endpoint: url, iniFiles },
          );
          const me = await whoAmI(url, chained);
          assert.equal(me.Arn, `arn:aws:sts::${PUBLISHER}:assumed-role/publisher/from-profile`);
          const missing = credentialProvider(
            { kind: 'profile', profile: 'nope' },
            { region: 'us-east-1', iniFiles },
          );
          await assert.rejects(missing(), (e: unknown) => isFerryError(e, 'FERRY_AWS_CREDENTIALS'));
        },
        { config },
      );
    });
  });

  it('nothing given is the SDK default chain (here: the environment)', async () => {
    await withCloud(
      async ({ url }) => {
        const saved = { ...process.env };
        process.env.AWS_ACCESS_KEY_ID = 'AKIAPUBLISHER0001';
        process.env.AWS_SECRET_ACCESS_KEY = 'publisher-secret';
        delete process.env.AWS_SESSION_TOKEN;
        delete process.env.AWS_PROFILE;
        try {
          const p = credentialProvider({ kind: 'default' }, { region: 'us-east-1' });
          assert.equal((await whoAmI(url, p)).Account, PUBLISHER);
        } finally {
          process.env = saved;
        }
      },
      { config },
    );
  });

  it('cachedProvider: refetches after a failure and keeps credentials without expiry', async () => {
    let calls = 0;
    const p = cachedProvider(async (): Promise<AwsCredentials> => {
      calls += 1;
      if (calls === 1) throw new Error('boom');
      return { accessKeyId: `k${calls}`, secretAccessKey: 's' };
    });
    await assert.rejects(p(), /boom/);
    assert.equal((await p()).accessKeyId, 'k2');
    assert.equal((await p()).accessKeyId, 'k2');
    assert.equal(calls, 2);
  });
});
