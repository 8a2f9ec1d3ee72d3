import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreateTagsCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { send, signRequest, withCloud } from '../helpers/cloud.js';
import { ec2, makeSnapshot } from '../helpers/ec2.js';

/** Sends a hand-built EC2 query; returns the status and the error code (or "" on success). */
async function query(
  url: string,
  params: Record<string, string>,
): Promise<{ status: number; code: string; body: string }> {
  const body = new URLSearchParams({ Version: '2016-11-15', ...params }).toString();
  const r = await send(
    url,
    await signRequest(
      url,
      {
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      },
      { service: 'ec2' },
    ),
  );
  return { status: r.status, code: /<Code>([^<]+)<\/Code>/.exec(r.body)?.[1] ?? '', body: r.body };
}

describe('cloud: EC2 under hostile input', () => {
  it('refuses malformed numbers, oversized lists and fields, forged tokens; never a 500', async () => {
    await withCloud(async ({ url }) => {
      const snap = await makeSnapshot(url);
      const many: Record<string, string> = { Action: 'DescribeSnapshots' };
      for (let i = 1; i <= 1001; i++)
        many[`SnapshotId.${i}`] = `snap-${String(i).padStart(17, '0')}`;
      const longToken = Buffer.from(JSON.stringify({ s: 'x', a: 'y'.repeat(500) })).toString(
        'base64url',
      );
      const mappings: Record<string, string> = {
        Action: 'RegisterImage',
        Name: 'many-mappings',
        RootDeviceName: '/dev/xvda',
      };
      for (let i = 1; i <= 70; i++)
        mappings[`BlockDeviceMapping.${i}.DeviceName`] =
          `/dev/xvd${String.fromCharCode(97 + (i % 26))}${i}`;
      const cases: Array<[Record<string, string>, string]> = [
        [{ Action: 'DescribeSnapshots', MaxResults: 'abc' }, 'InvalidParameterValue'],
        [
          { Action: 'DescribeSnapshots', MaxResults: '99999999999999999999' },
          'InvalidParameterValue',
        ],
        [many, 'InvalidParameterValue'],
        [{ Action: 'DescribeSnapshots', NextToken: longToken }, 'InvalidNextToken'],
        [{ Action: 'DescribeSnapshots', NextToken: '%%%' }, 'InvalidNextToken'],
        [{ Action: 'DescribeSnapshots', 'Filter.1.Value.1': 'x' }, 'InvalidParameterValue'],
        [
          {
            Action: 'CreateTags',
            'ResourceId.1': snap,
            'Tag.1.Key': 'k'.repeat(600),
            'Tag.1.Value': 'v',
          },
          'InvalidParameterValue',
        ],
        [
          {
            Action: 'CreateTags',
            'ResourceId.1': '../../etc',
            'Tag.1.Key': 'k',
            'Tag.1.Value': 'v',
          },
          'InvalidID',
        ],
        [{ Action: 'RegisterImage', Name: 'n'.repeat(600) }, 'InvalidParameterValue'],
        [mappings, 'InvalidParameterValue'],
        [{ Action: 'RegisterImage', Name: 'bool', EnaSupport: 'yes' }, 'InvalidParameterValue'],
        [{ Action: 'RegisterImage', Name: 'arch', Architecture: 'sparc' }, 'InvalidParameterValue'],
        [
          {
            Action: 'RegisterImage',
            Name: 'uefi',
            BootMode: 'uefi',
            UefiData: '!!not base64!!',
            RootDeviceName: '/dev/xvda',
            'BlockDeviceMapping.1.DeviceName': '/dev/xvda',
            'BlockDeviceMapping.1.Ebs.SnapshotId': snap,
          },
          'InvalidParameterValue',
        ],
        [{ Action: 'RegisterImage', Name: 'loc', ImageLocation: '/etc/passwd' }, 'InvalidManifest'],
        [
          {
            Action: 'CopyImage',
            SourceRegion: '../../..',
            SourceImageId: 'ami-0123456789abcdef0',
            Name: 'copy',
          },
          'InvalidParameterValue',
        ],
        [{ Action: 'DescribeImages', 'ImageId.1': 'ami-<script>' }, 'InvalidAMIID.Malformed'],
        [
          {
            Action: 'ModifyImageAttribute',
            ImageId: 'ami-0123456789abcdef0',
            Attribute: '__proto__',
          },
          'InvalidParameterValue',
        ],
        [
          {
            Action: 'DescribeImageAttribute',
            ImageId: 'ami-0123456789abcdef0',
            Attribute: '__proto__',
          },
          'InvalidParameterValue',
        ],
        [
          {
            Action: 'ModifySnapshotAttribute',
            SnapshotId: snap,
            'CreateVolumePermission.Add.1.Group': 'everyone',
          },
          'InvalidParameterValue',
        ],
      ];
      for (const [params, code] of cases) {
        const r = await query(url, params);
        assert.equal(r.code, code, `${params.Action}: ${r.body.slice(0, 300)}`);
        assert.equal(r.status, 400);
      }
      // An error message never echoes markup unescaped.
      const xss = await query(url, { Action: 'DescribeImages', 'ImageId.1': 'ami-<b>' });
      assert.ok(!xss.body.includes('<b>'));
    });
  });

  it('wildcard filters cannot be made to backtrack', async () => {
    await withCloud(async ({ url }) => {
      const snap = await makeSnapshot(url);
      const client = ec2(url);
      await client.send(
        new CreateTagsCommand({
          Resources: [snap],
          Tags: [{ Key: 'long', Value: 'a'.repeat(256) }],
        }),
      );
      const pattern = `${'*a'.repeat(60)}*b`;
      const started = Date.now();
      const r = await client.send(
        new DescribeSnapshotsCommand({
          Filters: [{ Name: 'tag:long', Values: Array.from({ length: 100 }, () => pattern) }],
        }),
      );
      assert.deepEqual(r.Snapshots, []);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      const hit = await client.send(
        new DescribeSnapshotsCommand({
          Filters: [{ Name: 'tag:long', Values: [`${'*a'.repeat(60)}*`] }],
        }),
      );
      assert.equal(hit.Snapshots?.length, 1);
    });
  });
});
