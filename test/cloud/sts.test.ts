import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { send, signRequest, TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';

const OTHER = '111111111111';
const config = {
  accounts: [
    {
      id: OTHER,
      accessKeyId: 'AKIAOTHER0000000001',
      secretAccessKey: 'other-secret',
      roles: [{ name: 'publisher', trust: ['000000000000'], maxSessionSeconds: 7200 }],
    },
  ],
};

function sts(
  url: string,
  credentials: {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
  } = TEST_CREDENTIALS,
  extra: { systemClockOffset?: number; region?: string } = {},
): STSClient {
  return new STSClient({
    endpoint: url,
    region: extra.region ?? 'us-east-1',
    credentials,
    maxAttempts: 1,
    ...(extra.systemClockOffset === undefined
      ? {}
      : { systemClockOffset: extra.systemClockOffset }),
  });
}

describe('cloud: STS and SigV4', () => {
  it('GetCallerIdentity answers the account of the access key', async () => {
    await withCloud(
      async ({ url }) => {
        const me = await sts(url).send(new GetCallerIdentityCommand({}));
        assert.equal(me.Account, '000000000000');
        assert.equal(me.Arn, 'arn:aws:iam::000000000000:root');
        assert.equal(me.UserId, '000000000000');
        const other = await sts(
          url,
          {
            accessKeyId: 'AKIAOTHER0000000001',
            secretAccessKey: 'other-secret',
          },
          { region: 'eu-west-3' },
        ).send(new GetCallerIdentityCommand({}));
        assert.equal(other.Account, OTHER);
        assert.equal(other.Arn, `arn:aws:iam::${OTHER}:root`);
      },
      { config },
    );
  });

  it('a wrong secret gets SignatureDoesNotMatch, an unknown key InvalidClientTokenId', async () => {
    await withCloud(async ({ url }) => {
      await assert.rejects(
        sts(url, { accessKeyId: 'test', secretAccessKey: 'wrong' }).send(
          new GetCallerIdentityCommand({}),
        ),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(e.name, 'SignatureDoesNotMatch');
          assert.equal(e.$metadata?.httpStatusCode, 403);
          return true;
        },
      );
      await assert.rejects(
        sts(url, { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' }).send(
          new GetCallerIdentityCommand({}),
        ),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(e.name, 'InvalidClientTokenId');
          assert.equal(e.$metadata?.httpStatusCode, 403);
          return true;
        },
      );
    });
  });

  it('a clock 20 minutes off is refused as STS does (Signature expired), and the SDK corrects it on retry', async () => {
    await withCloud(async ({ url, clock }) => {
      await assert.rejects(
        sts(url, TEST_CREDENTIALS, { systemClockOffset: -20 * 60_000 }).send(
          new GetCallerIdentityCommand({}),
        ),
        (e: Error) => {
          assert.equal(e.name, 'SignatureDoesNotMatch');
          assert.match(e.message, /^Signature expired: \d{8}T\d{6}Z is now earlier than/);
          return true;
        },
      );
      await assert.rejects(
        sts(url, TEST_CREDENTIALS, { systemClockOffset: 20 * 60_000 }).send(
          new GetCallerIdentityCommand({}),
        ),
        /Signature not yet current/,
      );
      // When the server's clock is the one that is off, the SDK reads it from the
      // Date header of the refusal and signs the retry with a corrected clock.
      clock.offset = 20 * 60_000;
      const retrying = new STSClient({
        endpoint: url,
        region: 'us-east-1',
        credentials: TEST_CREDENTIALS,
        maxAttempts: 2,
      });
      assert.equal((await retrying.send(new GetCallerIdentityCommand({}))).Account, '000000000000');
    });
  });

  it('AssumeRole hands out credentials of the other account that work until they expire', async () => {
    await withCloud(
      async ({ url, clock }) => {
        const out = await sts(url).send(
          new AssumeRoleCommand({
            RoleArn: `arn:aws:iam::${OTHER}:role/publisher`,
            RoleSessionName: 'ci-run',
            DurationSeconds: 900,
          }),
        );
        const c = out.Credentials!;
        assert.match(c.AccessKeyId!, /^ASIA[A-Z2-7]{16}$/);
        assert.equal(
          out.AssumedRoleUser?.Arn,
          `arn:aws:sts::${OTHER}:assumed-role/publisher/ci-run`,
        );
        assert.ok(Math.abs(c.Expiration!.getTime() - (Date.now() + 900_000)) < 5000);
        const temp = {
          accessKeyId: c.AccessKeyId!,
          secretAccessKey: c.SecretAccessKey!,
          sessionToken: c.SessionToken!,
        };
        const me = await sts(url, temp).send(new GetCallerIdentityCommand({}));
        assert.equal(me.Account, OTHER);
        assert.equal(me.Arn, `arn:aws:sts::${OTHER}:assumed-role/publisher/ci-run`);
        assert.match(me.UserId!, /^AROA[A-Z2-7]{17}:ci-run$/);
        assert.equal(me.UserId!.split(':')[0], out.AssumedRoleUser?.AssumedRoleId?.split(':')[0]);

        // A presigned call carries the token as X-Amz-Security-Token.
        const presigned = await signRequest(
          url,
          {
            method: 'GET',
            path: '/',
            query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
          },
          { service: 'sts', credentials: temp, presignExpiresIn: 60 },
        );
        assert.equal(presigned.query?.['X-Amz-Security-Token'], temp.sessionToken);
        const viaUrl = await send(url, presigned);
        assert.equal(viaUrl.status, 200, viaUrl.body);
        assert.match(viaUrl.body, new RegExp(`<Account>${OTHER}</Account>`));

        // Without its token, or with another, the key is refused.
        await assert.rejects(
          sts(url, { accessKeyId: temp.accessKeyId, secretAccessKey: temp.secretAccessKey }).send(
            new GetCallerIdentityCommand({}),
          ),
          { name: 'InvalidClientTokenId' },
        );
        await assert.rejects(
          sts(url, { ...temp, sessionToken: `${temp.sessionToken}x` }).send(
            new GetCallerIdentityCommand({}),
          ),
          { name: 'InvalidClientTokenId' },
        );

        // 16 minutes later (server and client clocks both moved) the session has expired.
        clock.offset = 16 * 60_000;
        await assert.rejects(
          sts(url, temp, { systemClockOffset: clock.offset }).send(
            new GetCallerIdentityCommand({}),
          ),
          (e: Error) => {
            assert.equal(e.name, 'ExpiredToken');
            assert.equal(e.message, 'The security token included in the request is expired');
            return true;
          },
        );
        // The long-term key still works at that time.
        const again = await sts(url, TEST_CREDENTIALS, { systemClockOffset: clock.offset }).send(
          new GetCallerIdentityCommand({}),
        );
        assert.equal(again.Account, '000000000000');
      },
      { config },
    );
  });

  it('AssumeRole refuses untrusted callers, unknown roles and bad durations', async () => {
    await withCloud(
      async ({ url }) => {
        const other = sts(url, {
          accessKeyId: 'AKIAOTHER0000000001',
          secretAccessKey: 'other-secret',
        });
        await assert.rejects(
          other.send(
            new AssumeRoleCommand({
              RoleArn: 'arn:aws:iam::000000000000:role/publisher',
              RoleSessionName: 'x1',
            }),
          ),
          (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
            assert.equal(e.name, 'AccessDenied');
            assert.equal(e.$metadata?.httpStatusCode, 403);
            assert.match(e.message, /is not authorized to perform: sts:AssumeRole on resource/);
            return true;
          },
        );
        await assert.rejects(
          sts(url).send(
            new AssumeRoleCommand({
              RoleArn: `arn:aws:iam::${OTHER}:role/nope`,
              RoleSessionName: 'x1',
            }),
          ),
          { name: 'AccessDenied' },
        );
        await assert.rejects(
          sts(url).send(
            new AssumeRoleCommand({
              RoleArn: `arn:aws:iam::${OTHER}:role/publisher`,
              RoleSessionName: 'x1',
              DurationSeconds: 7201,
            }),
          ),
          { name: 'ValidationError' },
        );
        await assert.rejects(
          sts(url).send(
            new AssumeRoleCommand({
              RoleArn: `arn:aws:iam::${OTHER}:role/publisher`,
              RoleSessionName: 'bad name',
            }),
          ),
          { name: 'ValidationError' },
        );
      },
      { config },
    );
  });

  it("refuses unsigned requests, unknown services and bad regions in the protocol's shape", async () => {
    await withCloud(async ({ url }) => {
      const unsigned = await send(url, {
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'Action=GetCallerIdentity&Version=2011-06-15',
      });
      assert.equal(unsigned.status, 403);
      assert.match(
        unsigned.body,
        /<ErrorResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>MissingAuthenticationToken<\/Code>/,
      );
      assert.match(unsigned.body, /<RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/);

      const form = {
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'Action=GetCallerIdentity&Version=2011-06-15',
      };
      const wrongService = await send(url, await signRequest(url, form, { service: 'lambda' }));
      assert.equal(wrongService.status, 403);
      assert.match(
        wrongService.body,
        /<Code>SignatureDoesNotMatch<\/Code><Message>Credential should be scoped to correct service/,
      );

      const badRegion = await send(
        url,
        await signRequest(url, form, { service: 'sts', region: 'mars-north-1' }),
      );
      assert.equal(badRegion.status, 403);
      assert.match(badRegion.body, /valid region/);

      const ok = await send(
        url,
        await signRequest(url, form, { service: 'sts', region: 'ap-southeast-2' }),
      );
      assert.equal(ok.status, 200, ok.body);
      assert.match(ok.body, /<Account>000000000000<\/Account>/);

      // A tampered body no longer matches its signature.
      const signed = await signRequest(url, form, { service: 'sts' });
      const tampered = await send(url, {
        ...signed,
        body: 'Action=GetCallerIdentity&Version=2011-06-16',
      });
      assert.equal(tampered.status, 403);
      assert.match(tampered.body, /<Code>SignatureDoesNotMatch<\/Code>/);

      const unknownAction = await send(
        url,
        await signRequest(
          url,
          { ...form, body: 'Action=GetFederationToken&Version=2011-06-15' },
          { service: 'sts' },
        ),
      );
      assert.equal(unknownAction.status, 400);
      assert.match(unknownAction.body, /<Code>InvalidAction<\/Code>/);
    });
  });
});
