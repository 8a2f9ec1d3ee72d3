import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeSnapshotsCommand,
  DescribeTagsCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { AwsError, type Ec2Tag } from '../../src/cloud/index.js';
import { withCloud } from '../helpers/cloud.js';
import { EC2_CONFIG, ec2, ec2Code, makeSnapshot, OTHER_KEY } from '../helpers/ec2.js';

describe('cloud: EC2 tags', () => {
  it('CreateTags, DeleteTags and DescribeTags over images and snapshots', async () => {
    await withCloud(
      async ({ url }) => {
        const client = ec2(url);
        const snap = await makeSnapshot(url);
        const { ImageId } = await client.send(
          new RegisterImageCommand({
            Name: 'tagged',
            RootDeviceName: '/dev/xvda',
            BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap } }],
          }),
        );
        const ami = ImageId!;
        await client.send(
          new CreateTagsCommand({
            Resources: [ami, snap],
            Tags: [{ Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'blue' }, { Key: 'empty' }],
          }),
        );
        const all = await client.send(new DescribeTagsCommand({}));
        assert.deepEqual(
          all.Tags?.map((t) => [t.ResourceId, t.ResourceType, t.Key, t.Value]),
          [
            [ami, 'image', 'empty', ''],
            [ami, 'image', 'env', 'prod'],
            [ami, 'image', 'team', 'blue'],
            [snap, 'snapshot', 'empty', ''],
            [snap, 'snapshot', 'env', 'prod'],
            [snap, 'snapshot', 'team', 'blue'],
          ].sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)),
        );
        const images = await client.send(
          new DescribeTagsCommand({
            Filters: [
              { Name: 'resource-type', Values: ['image'] },
              { Name: 'key', Values: ['e*'] },
            ],
          }),
        );
        assert.deepEqual(
          images.Tags?.map((t) => t.Key),
          ['empty', 'env'],
        );
        const byValue = await client.send(
          new DescribeTagsCommand({
            Filters: [
              { Name: 'value', Values: ['bl?e'] },
              { Name: 'resource-id', Values: [snap] },
            ],
          }),
        );
        assert.deepEqual(
          byValue.Tags?.map((t) => [t.ResourceId, t.Key]),
          [[snap, 'team']],
        );
        // Overwriting a key replaces its value.
        await client.send(
          new CreateTagsCommand({ Resources: [snap], Tags: [{ Key: 'env', Value: 'dev' }] }),
        );
        const s = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snap] }));
        assert.equal(s.Snapshots?.[0]?.Tags?.find((t) => t.Key === 'env')?.Value, 'dev');
        // Delete by key; by key and value (a wrong value keeps it); an empty value only matches empty.
        await client.send(
          new DeleteTagsCommand({
            Resources: [ami],
            Tags: [{ Key: 'team', Value: 'green' }, { Key: 'env' }],
          }),
        );
        await client.send(
          new DeleteTagsCommand({
            Resources: [snap],
            Tags: [
              { Key: 'team', Value: '' },
              { Key: 'empty', Value: '' },
            ],
          }),
        );
        const after = await client.send(new DescribeTagsCommand({}));
        assert.deepEqual(
          after.Tags?.map((t) => `${t.ResourceId === ami ? 'ami' : 'snap'}:${t.Key}`).sort(),
          ['ami:empty', 'ami:team', 'snap:env', 'snap:team'],
        );
        // No tags named: all of them go.
        await client.send(new DeleteTagsCommand({ Resources: [ami] }));
        assert.deepEqual(
          (
            await client.send(
              new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [ami] }] }),
            )
          ).Tags,
          [],
        );
        await assert.rejects(
          client.send(new DescribeTagsCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          client.send(new CreateTagsCommand({ Resources: [ami], Tags: [] })),
          ec2Code('MissingParameter'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it("enforces the limits: 50 tags, keys of 128, values of 256, aws: reserved; ids must be known and the caller's", async () => {
    await withCloud(
      async ({ url }) => {
        const client = ec2(url);
        const snap = await makeSnapshot(url);
        const tags = (n: number, from = 0) =>
          Array.from({ length: n }, (_, i) => ({ Key: `k${from + i}`, Value: `v${i}` }));
        await client.send(new CreateTagsCommand({ Resources: [snap], Tags: tags(49) }));
        await client.send(
          new CreateTagsCommand({
            Resources: [snap],
            Tags: [{ Key: 'x'.repeat(128), Value: 'y'.repeat(256) }],
          }),
        );
        await assert.rejects(
          client.send(new CreateTagsCommand({ Resources: [snap], Tags: tags(1, 100) })),
          ec2Code('TagLimitExceeded'),
        );
        // Replacing existing keys does not count twice.
        await client.send(new CreateTagsCommand({ Resources: [snap], Tags: tags(10) }));
        const other = await makeSnapshot(url, { seed: 3 });
        await assert.rejects(
          client.send(new CreateTagsCommand({ Resources: [other], Tags: tags(51) })),
          ec2Code('TagLimitExceeded'),
        );
        await assert.rejects(
          client.send(
            new CreateTagsCommand({
              Resources: [other],
              Tags: [{ Key: 'x'.repeat(129), Value: '' }],
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          client.send(
            new CreateTagsCommand({
              Resources: [other],
              Tags: [{ Key: 'k', Value: 'y'.repeat(257) }],
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          client.send(
            new CreateTagsCommand({
              Resources: [other],
              Tags: [{ Key: 'aws:cloudformation', Value: 'x' }],
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          client.send(
            new CreateTagsCommand({ Resources: [other], Tags: [{ Key: '', Value: 'x' }] }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        // Every id is checked before any resource changes.
        await assert.rejects(
          client.send(
            new CreateTagsCommand({
              Resources: [other, 'ami-0123456789abcdef0'],
              Tags: [{ Key: 'a', Value: 'b' }],
            }),
          ),
          ec2Code('InvalidAMIID.NotFound'),
        );
        assert.equal(
          (await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [other] }))).Snapshots?.[0]
            ?.Tags,
          undefined,
        );
        await assert.rejects(
          client.send(
            new CreateTagsCommand({ Resources: ['bogus-1'], Tags: [{ Key: 'a', Value: 'b' }] }),
          ),
          ec2Code('InvalidID'),
        );
        await assert.rejects(
          client.send(
            new CreateTagsCommand({
              Resources: ['snap-0123456789abcdef0'],
              Tags: [{ Key: 'a', Value: 'b' }],
            }),
          ),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        // Another account's snapshot is not the caller's to tag.
        await assert.rejects(
          ec2(url, OTHER_KEY).send(
            new CreateTagsCommand({ Resources: [snap], Tags: [{ Key: 'a', Value: 'b' }] }),
          ),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        assert.deepEqual((await ec2(url, OTHER_KEY).send(new DescribeTagsCommand({}))).Tags, []);

        // Paging: the 50 tags in pages of 25.
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const page = await client.send(
            new DescribeTagsCommand({ MaxResults: 25, ...(token ? { NextToken: token } : {}) }),
          );
          keys.push(...(page.Tags ?? []).map((t) => `${t.ResourceId}/${t.Key}`));
          token = page.NextToken;
        } while (token !== undefined);
        assert.equal(keys.length, 50);
        assert.equal(new Set(keys).size, 50);
        await assert.rejects(
          client.send(new DescribeTagsCommand({ MaxResults: 1001 })),
          ec2Code('InvalidParameterCombination'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it('other components plug their resource kinds into the registry', async () => {
    await withCloud(async ({ url, endpoint }) => {
      const instances = new Map<string, Ec2Tag[]>([['i-0123456789abcdef0', []]]);
      endpoint.tags.register({
        resourceType: 'instance',
        prefix: 'i-',
        notFound: (id) =>
          new AwsError(400, 'InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`),
        exists: async (caller, id) => caller.account === '000000000000' && instances.has(id),
        updateTags: async (_caller, id, change) => {
          instances.set(id, [...change(instances.get(id) ?? [])]);
        },
        list: async () => [...instances].map(([id, tags]) => ({ id, tags })),
      });
      const client = ec2(url);
      await client.send(
        new CreateTagsCommand({
          Resources: ['i-0123456789abcdef0'],
          Tags: [{ Key: 'Name', Value: 'web' }],
        }),
      );
      assert.deepEqual(instances.get('i-0123456789abcdef0'), [{ key: 'Name', value: 'web' }]);
      const d = await client.send(
        new DescribeTagsCommand({ Filters: [{ Name: 'resource-type', Values: ['instance'] }] }),
      );
      assert.deepEqual(d.Tags, [
        { ResourceId: 'i-0123456789abcdef0', ResourceType: 'instance', Key: 'Name', Value: 'web' },
      ]);
      await assert.rejects(
        client.send(
          new CreateTagsCommand({
            Resources: ['i-0000000000000000a'],
            Tags: [{ Key: 'a', Value: 'b' }],
          }),
        ),
        ec2Code('InvalidInstanceID.NotFound'),
      );
      // The same limits apply to a plugged-in kind.
      await assert.rejects(
        client.send(
          new CreateTagsCommand({
            Resources: ['i-0123456789abcdef0'],
            Tags: [{ Key: 'aws:x', Value: 'b' }],
          }),
        ),
        ec2Code('InvalidParameterValue'),
      );
    });
  });
});
