import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  GetKeyPolicyCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  PutKeyPolicyCommand,
} from '@aws-sdk/client-kms';
import { send, signRequest, TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';

const OTHER = '222222222222';
const OTHER_KEY = { accessKeyId: 'AKIAOTHERKMS0001', secretAccessKey: 'kms-secret' };
const config = { accounts: [{ id: OTHER, ...OTHER_KEY }] };

function kms(
  url: string,
  region = 'us-east-1',
  credentials: { accessKeyId: string; secretAccessKey: string } = TEST_CREDENTIALS,
): KMSClient {
  return new KMSClient({ endpoint: url, region, credentials, maxAttempts: 1 });
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

describe('cloud: KMS', () => {
  it('alias/aws/ebs is made on first use, once per account and region', async () => {
    await withCloud(async ({ url }) => {
      const listed = await kms(url).send(new ListAliasesCommand({}));
      const before = listed.Aliases?.find((a) => a.AliasName === 'alias/aws/ebs');
      assert.ok(before !== undefined);
      assert.equal(before.TargetKeyId, undefined);
      assert.equal(before.AliasArn, 'arn:aws:kms:us-east-1:000000000000:alias/aws/ebs');

      const a = await kms(url).send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
      const meta = a.KeyMetadata!;
      assert.match(meta.Arn!, new RegExp(`^arn:aws:kms:us-east-1:000000000000:key/${UUID}$`));
      assert.equal(meta.KeyManager, 'AWS');
      assert.equal(meta.KeyState, 'Enabled');
      assert.equal(meta.AWSAccountId, '000000000000');
      assert.ok(meta.CreationDate instanceof Date);
      const again = await kms(url).send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
      assert.equal(again.KeyMetadata?.KeyId, meta.KeyId);
      const byArn = await kms(url).send(new DescribeKeyCommand({ KeyId: meta.Arn! }));
      assert.equal(byArn.KeyMetadata?.KeyId, meta.KeyId);
      const aliasAfter = (await kms(url).send(new ListAliasesCommand({}))).Aliases?.find(
        (x) => x.AliasName === 'alias/aws/ebs',
      );
      assert.equal(aliasAfter?.TargetKeyId, meta.KeyId);

      const west = await kms(url, 'us-west-2').send(
        new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }),
      );
      assert.notEqual(west.KeyMetadata?.KeyId, meta.KeyId);
      assert.match(west.KeyMetadata!.Arn!, /^arn:aws:kms:us-west-2:000000000000:key\//);
    });
  });

  it('CreateKey, DescribeKey by id, ARN and alias, ListAliases and ListKeys with paging', async () => {
    await withCloud(async ({ url }) => {
      const client = kms(url, 'eu-west-1');
      const made: string[] = [];
      for (let i = 0; i < 5; i++) {
        const k = await client.send(
          new CreateKeyCommand({
            Description: `key ${i}`,
            Tags: [{ TagKey: 'n', TagValue: String(i) }],
          }),
        );
        assert.equal(k.KeyMetadata?.KeyManager, 'CUSTOMER');
        assert.equal(k.KeyMetadata?.Description, `key ${i}`);
        assert.equal(k.KeyMetadata?.KeySpec, 'SYMMETRIC_DEFAULT');
        made.push(k.KeyMetadata!.KeyId!);
        await client.send(
          new CreateAliasCommand({
            AliasName: `alias/team/k${i}`,
            TargetKeyId: k.KeyMetadata!.KeyId!,
          }),
        );
      }
      const byId = await client.send(new DescribeKeyCommand({ KeyId: made[2]! }));
      assert.equal(byId.KeyMetadata?.Description, 'key 2');
      const byAlias = await client.send(new DescribeKeyCommand({ KeyId: 'alias/team/k3' }));
      assert.equal(byAlias.KeyMetadata?.KeyId, made[3]);
      const byAliasArn = await client.send(
        new DescribeKeyCommand({ KeyId: 'arn:aws:kms:eu-west-1:000000000000:alias/team/k4' }),
      );
      assert.equal(byAliasArn.KeyMetadata?.KeyId, made[4]);

      const names: string[] = [];
      let marker: string | undefined;
      let pages = 0;
      do {
        const p = await client.send(
          new ListAliasesCommand({ Limit: 2, ...(marker === undefined ? {} : { Marker: marker }) }),
        );
        assert.ok((p.Aliases?.length ?? 0) <= 2);
        names.push(...(p.Aliases ?? []).map((a) => a.AliasName!));
        assert.equal(p.Truncated, p.NextMarker !== undefined);
        marker = p.NextMarker;
        pages++;
      } while (marker !== undefined);
      assert.equal(pages, 3);
      assert.deepEqual(names, [
        'alias/aws/ebs',
        'alias/team/k0',
        'alias/team/k1',
        'alias/team/k2',
        'alias/team/k3',
        'alias/team/k4',
      ]);

      const forKey = await client.send(new ListAliasesCommand({ KeyId: made[1]! }));
      assert.deepEqual(
        forKey.Aliases?.map((a) => a.AliasName),
        ['alias/team/k1'],
      );

      const keys = await client.send(new ListKeysCommand({ Limit: 3 }));
      assert.equal(keys.Keys?.length, 3);
      assert.equal(keys.Truncated, true);
      const rest = await client.send(new ListKeysCommand({ Limit: 3, Marker: keys.NextMarker! }));
      assert.equal(rest.Keys?.length, 2);
      assert.equal(rest.Truncated, false);

      await assert.rejects(client.send(new ListAliasesCommand({ Limit: 0 })), {
        name: 'ValidationException',
      });
      await assert.rejects(client.send(new ListAliasesCommand({ Marker: 'bm9wZQ' })), {
        name: 'InvalidMarkerException',
      });
      await assert.rejects(
        client.send(new CreateAliasCommand({ AliasName: 'alias/team/k0', TargetKeyId: made[0]! })),
        { name: 'AlreadyExistsException' },
      );
      await assert.rejects(
        client.send(new CreateAliasCommand({ AliasName: 'alias/aws/mine', TargetKeyId: made[0]! })),
        { name: 'NotAuthorizedException' },
      );
      await assert.rejects(
        client.send(new DescribeKeyCommand({ KeyId: 'alias/none' })),
        (e: Error) => {
          assert.equal(e.name, 'NotFoundException');
          assert.equal(
            e.message,
            'Alias arn:aws:kms:eu-west-1:000000000000:alias/none is not found.',
          );
          return true;
        },
      );
      // Another region of the same account holds none of these.
      await assert.rejects(
        kms(url, 'eu-west-2').send(new DescribeKeyCommand({ KeyId: made[0]! })),
        {
          name: 'NotFoundException',
        },
      );
    });
  });

  it('keeps accounts apart: another account cannot see or use a key unless its policy allows it', async () => {
    await withCloud(
      async ({ url, endpoint }) => {
        const mine = await kms(url).send(new CreateKeyCommand({}));
        const shared = await kms(url).send(
          new CreateKeyCommand({
            Policy: JSON.stringify({
              Version: '2012-10-17',
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: 'arn:aws:iam::000000000000:root' },
                  Action: 'kms:*',
                  Resource: '*',
                },
                {
                  Effect: 'Allow',
                  Principal: { AWS: [`arn:aws:iam::${OTHER}:root`] },
                  Action: 'kms:Decrypt',
                  Resource: '*',
                },
              ],
            }),
          }),
        );
        const ebs = await kms(url).send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
        const other = kms(url, 'us-east-1', OTHER_KEY);
        assert.deepEqual((await other.send(new ListKeysCommand({}))).Keys, []);
        await assert.rejects(
          other.send(new DescribeKeyCommand({ KeyId: mine.KeyMetadata!.KeyId! })),
          {
            name: 'NotFoundException',
          },
        );
        await assert.rejects(
          other.send(new DescribeKeyCommand({ KeyId: mine.KeyMetadata!.Arn! })),
          (e: Error) => {
            assert.equal(e.name, 'AccessDeniedException');
            assert.match(e.message, /is not authorized to perform: kms:DescribeKey/);
            return true;
          },
        );
        await assert.rejects(other.send(new DescribeKeyCommand({ KeyId: ebs.KeyMetadata!.Arn! })), {
          name: 'AccessDeniedException',
        });
        const seen = await other.send(new DescribeKeyCommand({ KeyId: shared.KeyMetadata!.Arn! }));
        assert.equal(seen.KeyMetadata?.AWSAccountId, '000000000000');
        const otherEbs = await other.send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
        assert.notEqual(otherEbs.KeyMetadata?.KeyId, ebs.KeyMetadata?.KeyId);
        assert.equal(otherEbs.KeyMetadata?.AWSAccountId, OTHER);

        // A later policy grants the other account the first key.
        const grant = JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { AWS: OTHER }, Action: 'kms:*', Resource: '*' },
          ],
        });
        await kms(url).send(
          new PutKeyPolicyCommand({
            KeyId: mine.KeyMetadata!.KeyId!,
            PolicyName: 'default',
            Policy: grant,
          }),
        );
        assert.equal(
          (await kms(url).send(new GetKeyPolicyCommand({ KeyId: mine.KeyMetadata!.KeyId! })))
            .Policy,
          grant,
        );
        const granted = await other.send(new DescribeKeyCommand({ KeyId: mine.KeyMetadata!.Arn! }));
        assert.equal(granted.KeyMetadata?.KeyId, mine.KeyMetadata?.KeyId);
        await assert.rejects(
          other.send(
            new PutKeyPolicyCommand({
              KeyId: mine.KeyMetadata!.Arn!,
              PolicyName: 'default',
              Policy: grant,
            }),
          ),
          { name: 'AccessDeniedException' },
        );
        await assert.rejects(
          kms(url).send(
            new PutKeyPolicyCommand({
              KeyId: 'alias/aws/ebs',
              PolicyName: 'default',
              Policy: grant,
            }),
          ),
          { name: 'AccessDeniedException' },
        );

        const record = await endpoint.kms.resolve(
          '000000000000',
          'us-east-1',
          shared.KeyMetadata!.KeyId!,
          'kms:DescribeKey',
          'x',
        );
        assert.deepEqual(record.allowedAccounts, [OTHER]);
      },
      { config },
    );
  });

  it('answers in the JSON 1.1 shape (__type, message, x-amzn-ErrorType)', async () => {
    await withCloud(async ({ url }) => {
      const wrong = await kms(url, 'us-east-1', { accessKeyId: 'test', secretAccessKey: 'x' })
        .send(new ListKeysCommand({}))
        .catch((e: Error) => e);
      assert.equal((wrong as Error).name, 'InvalidSignatureException');
      const r = await send(
        url,
        await signRequest(
          url,
          {
            method: 'POST',
            path: '/',
            headers: {
              'content-type': 'application/x-amz-json-1.1',
              'x-amz-target': 'TrentService.DescribeKey',
            },
            body: JSON.stringify({ KeyId: 'alias/nothing' }),
          },
          { service: 'kms' },
        ),
      );
      assert.equal(r.status, 400);
      assert.equal(r.headers['x-amzn-errortype'], 'NotFoundException');
      assert.equal(r.headers['content-type'], 'application/x-amz-json-1.1');
      assert.deepEqual(JSON.parse(r.body), {
        __type: 'NotFoundException',
        message: 'Alias arn:aws:kms:us-east-1:000000000000:alias/nothing is not found.',
      });
      const unknown = await send(
        url,
        await signRequest(
          url,
          {
            method: 'POST',
            path: '/',
            headers: {
              'content-type': 'application/x-amz-json-1.1',
              'x-amz-target': 'TrentService.Rotate',
            },
            body: '{}',
          },
          { service: 'kms' },
        ),
      );
      assert.equal(JSON.parse(unknown.body).__type, 'UnknownOperationException');
      const notJson = await send(
        url,
        await signRequest(
          url,
          {
            method: 'POST',
            path: '/',
            headers: {
              'content-type': 'application/x-amz-json-1.1',
              'x-amz-target': 'TrentService.ListKeys',
            },
            body: '{nope',
          },
          { service: 'kms' },
        ),
      );
      assert.equal(JSON.parse(notJson.body).__type, 'SerializationException');
    });
  });
});
