import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { REGIONS } from '../../src/cloud/index.js';
import { send, signRequest, TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';

function ec2(url: string, extra: { systemClockOffset?: number; secret?: string } = {}): EC2Client {
  return new EC2Client({
    endpoint: url,
    region: 'eu-central-1',
    credentials: {
      ...TEST_CREDENTIALS,
      ...(extra.secret === undefined ? {} : { secretAccessKey: extra.secret }),
    },
    maxAttempts: 1,
    ...(extra.systemClockOffset === undefined
      ? {}
      : { systemClockOffset: extra.systemClockOffset }),
  });
}

describe('cloud: EC2', () => {
  it('DescribeRegions lists every region, by name and by filter', async () => {
    await withCloud(async ({ url }) => {
      const all = await ec2(url).send(new DescribeRegionsCommand({ AllRegions: true }));
      assert.deepEqual(
        all.Regions?.map((r) => r.RegionName),
        REGIONS.map((r) => r.name),
      );
      const east = all.Regions?.find((r) => r.RegionName === 'us-east-1');
      assert.equal(east?.Endpoint, 'ec2.us-east-1.amazonaws.com');
      assert.equal(east?.OptInStatus, 'opt-in-not-required');
      assert.equal(
        all.Regions?.find((r) => r.RegionName === 'af-south-1')?.OptInStatus,
        'opted-in',
      );

      const two = await ec2(url).send(
        new DescribeRegionsCommand({ RegionNames: ['us-west-2', 'eu-west-1'] }),
      );
      assert.deepEqual(
        two.Regions?.map((r) => r.RegionName),
        ['eu-west-1', 'us-west-2'],
      );

      const eu = await ec2(url).send(
        new DescribeRegionsCommand({ Filters: [{ Name: 'region-name', Values: ['eu-*'] }] }),
      );
      assert.ok((eu.Regions?.length ?? 0) >= 7);
      assert.ok(eu.Regions?.every((r) => r.RegionName?.startsWith('eu-')));

      await assert.rejects(
        ec2(url).send(new DescribeRegionsCommand({ RegionNames: ['us-nowhere-9'] })),
        { name: 'InvalidParameterValue' },
      );
      await assert.rejects(
        ec2(url).send(new DescribeRegionsCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })),
        { name: 'InvalidParameterValue' },
      );
      await assert.rejects(ec2(url).send(new DescribeRegionsCommand({ DryRun: true })), {
        name: 'DryRunOperation',
      });
    });
  });

  it('answers in the EC2 error shape: RequestExpired for a skewed clock, InvalidAction', async () => {
    await withCloud(async ({ url }) => {
      await assert.rejects(
        ec2(url, { systemClockOffset: -30 * 60_000 }).send(new DescribeRegionsCommand({})),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(e.name, 'RequestExpired');
          assert.equal(e.$metadata?.httpStatusCode, 400);
          return true;
        },
      );
      await assert.rejects(ec2(url, { secret: 'nope' }).send(new DescribeRegionsCommand({})), {
        name: 'SignatureDoesNotMatch',
      });
      const r = await send(
        url,
        await signRequest(
          url,
          {
            method: 'POST',
            path: '/',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'Action=DescribeVolcanoes&Version=2016-11-15',
          },
          { service: 'ec2' },
        ),
      );
      assert.equal(r.status, 400);
      assert.match(
        r.body,
        /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Response><Errors><Error><Code>InvalidAction<\/Code><Message>The action DescribeVolcanoes is not valid for this web service.<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/,
      );
    });
  });
});
