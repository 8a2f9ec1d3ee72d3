/**
 * Conformance with the official service models (Debian's python3-botocore):
 * every operation the endpoint implements is driven through the SDK v3
 * clients, behind a proxy that records each exchange, and every request and
 * response is checked against the model of its service (members, list
 * wrappers, scalar types and enums, REST headers and status codes, error
 * envelopes and modeled error statuses). Which operations are implemented is
 * asked of the endpoint itself (an unknown action answers InvalidAction or
 * UnknownOperationException), so a newly added operation without a scenario
 * here fails the test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import {
  CopyImageCommand,
  CopySnapshotCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeRegionsCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  DescribeTagsCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
  ResetImageAttributeCommand,
  ResetSnapshotAttributeCommand,
} from '@aws-sdk/client-ec2';
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
import { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { loadModel, type ServiceModel } from '../helpers/botocore-model.js';
import { send, signRequest, TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { importScenario, S3_IMPLEMENTED, s3Scenario } from '../helpers/conformance-scenarios.js';
import { block, sha256b64 } from '../helpers/ebs.js';
import { haveDiskTools } from '../helpers/import-disks.js';
import { type Exchange, RecordingProxy } from '../helpers/recording-proxy.js';
import { gate } from '../helpers/vm-import.js';
import { type Checked, checkExchange } from '../helpers/wire-conformance.js';

const OTHER = '111111111111';
const CONFIG = {
  accounts: [
    {
      id: OTHER,
      accessKeyId: 'AKIAOTHER0000000001',
      secretAccessKey: 'other-secret',
      roles: [{ name: 'publisher', trust: ['000000000000'] }],
    },
  ],
};

const VERSIONS = {
  sts: '2011-06-15',
  kms: '2014-11-01',
  ec2: '2016-11-15',
  ebs: '2019-11-02',
  s3: '2006-03-01',
} as const;
type Service = keyof typeof VERSIONS;

const models = new Map<Service, ServiceModel>();
for (const [s, v] of Object.entries(VERSIONS)) {
  const m = loadModel(s, v);
  if (m !== null) models.set(s as Service, m);
}

/**
 * Members AWS added after the model Debian ships (botocore 1.29, late 2022)
 * and the SDK v3 knows; each is allowed only in the problem it would cause.
 */
const NEWER_THAN_MODEL: readonly RegExp[] = [
  /^ebs StartSnapshot \(201\): response: SseType is not a body member$/, // 2023
  /^kms GetKeyPolicy \(200\): response: PolicyName is not a body member$/, // 2024
  /^s3 HeadBucket \(200\): response: header x-amz-bucket-region is not in the model$/, // 2023
  /^s3 ListBuckets \(200\): response\.Buckets\[\]: <BucketRegion> is not a member$/, // 2024
  /^s3 [A-Za-z0-9]+ \(200\): response: header x-amz-checksum-type is not in the model$/, // 2025
  /^s3 [A-Za-z0-9]+ \(200\): response(\.Contents\[\]|\.CopyObjectResult)?: <ChecksumType> is not a member$/, // 2025
  /^ec2 RegisterImage \(200\): request: TagSpecification is not a member$/, // 2023
  /^ec2 DeregisterImage \(200\): response: DeregisterImage has no output, got <return>$/, // 2025
];

/** The SigV4 scope's service of a recorded request. */
function serviceOf(ex: Exchange): string | undefined {
  const auth = String(ex.requestHeaders.authorization ?? '');
  const m =
    /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(auth) ??
    /X-Amz-Credential=[^&/]+%2F\d{8}%2F[^&%]+%2F([^&%]+)%2Faws4_request/i.exec(ex.url);
  return m?.[1];
}

/** The operations of `service` the endpoint answers (anything but "no such action"). */
async function implemented(url: string, service: Service, model: ServiceModel): Promise<string[]> {
  if (service === 'ebs') return Object.keys(model.operations);
  if (service === 's3') return [...S3_IMPLEMENTED];
  const found: string[] = [];
  for (const op of Object.keys(model.operations)) {
    const signed =
      service === 'kms'
        ? await signRequest(
            url,
            {
              method: 'POST',
              path: '/',
              headers: {
                'content-type': 'application/x-amz-json-1.1',
                'x-amz-target': `TrentService.${op}`,
              },
              body: '{}',
            },
            { service },
          )
        : await signRequest(
            url,
            {
              method: 'POST',
              path: '/',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: `Action=${op}&Version=${VERSIONS[service]}`,
            },
            { service },
          );
    const r = await send(url, signed);
    if (!/InvalidAction|UnknownOperationException/.test(r.body)) found.push(op);
  }
  return found;
}

async function expectError(p: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, name);
    return true;
  });
}

describe('cloud: conformance with the botocore models', () => {
  it('every implemented operation, requests and responses, as the models say', {
    skip:
      models.size < Object.keys(VERSIONS).length
        ? 'python3-botocore is not installed'
        : haveDiskTools
          ? false
          : 'mke2fs or sfdisk missing (the VM Import disk)',
  }, async () => {
    // Import tasks wait at "validating" until the scenario lets them on.
    const held = gate('validating');
    await withCloud(
      async ({ url, dir }) => {
        const proxy = new RecordingProxy(url);
        const via = await proxy.listen();
        try {
          const config = {
            endpoint: via,
            region: 'us-east-1',
            credentials: TEST_CREDENTIALS,
            maxAttempts: 1,
          };

          // STS
          const sts = new STSClient(config);
          await sts.send(new GetCallerIdentityCommand({}));
          await sts.send(
            new AssumeRoleCommand({
              RoleArn: `arn:aws:iam::${OTHER}:role/publisher`,
              RoleSessionName: 'conformance',
              DurationSeconds: 900,
            }),
          );
          await expectError(
            sts.send(
              new AssumeRoleCommand({
                RoleArn: `arn:aws:iam::${OTHER}:role/nobody`,
                RoleSessionName: 'denied',
              }),
            ),
            'AccessDenied',
          );

          // KMS
          const kms = new KMSClient(config);
          const key = await kms.send(
            new CreateKeyCommand({
              Description: 'conformance',
              Tags: [{ TagKey: 'a', TagValue: 'b' }],
            }),
          );
          const keyId = key.KeyMetadata?.KeyId ?? '';
          await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
          await kms.send(new ListKeysCommand({ Limit: 10 }));
          await kms.send(
            new CreateAliasCommand({ AliasName: 'alias/conformance', TargetKeyId: keyId }),
          );
          await kms.send(new ListAliasesCommand({}));
          const policy = await kms.send(
            new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }),
          );
          await kms.send(
            new PutKeyPolicyCommand({
              KeyId: keyId,
              PolicyName: 'default',
              Policy: policy.Policy ?? '',
            }),
          );
          await expectError(
            kms.send(new DescribeKeyCommand({ KeyId: 'alias/missing' })),
            'NotFoundException',
          );

          // EC2
          const ec2 = new EC2Client(config);
          await ec2.send(new DescribeRegionsCommand({}));
          await ec2.send(
            new DescribeRegionsCommand({ Filters: [{ Name: 'region-name', Values: ['eu-*'] }] }),
          );
          await expectError(
            ec2.send(new DescribeRegionsCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })),
            'InvalidParameterValue',
          );

          // EBS direct
          const ebs = new EBSClient(config);
          const snap = await ebs.send(
            new StartSnapshotCommand({
              VolumeSize: 1,
              Tags: [{ Key: 'k', Value: 'v' }],
              Timeout: 60,
            }),
          );
          const id = snap.SnapshotId ?? '';
          const data = block(7);
          await ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: id,
              BlockIndex: 3,
              BlockData: data,
              DataLength: data.length,
              Checksum: sha256b64(data),
              ChecksumAlgorithm: 'SHA256',
              Progress: 50,
            }),
          );
          await expectError(
            ebs.send(
              new PutSnapshotBlockCommand({
                SnapshotId: id,
                BlockIndex: 4,
                BlockData: data,
                DataLength: data.length,
                Checksum: sha256b64(block(8)),
                ChecksumAlgorithm: 'SHA256',
              }),
            ),
            'ValidationException',
          );
          await ebs.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 1 }));
          const blocks = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id }));
          await ebs.send(new ListChangedBlocksCommand({ SecondSnapshotId: id }));
          const got = await ebs.send(
            new GetSnapshotBlockCommand({
              SnapshotId: id,
              BlockIndex: 3,
              BlockToken: blocks.Blocks?.[0]?.BlockToken ?? '',
            }),
          );
          await got.BlockData?.transformToByteArray();
          await expectError(
            ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: 'snap-0000000000000000a' })),
            'ResourceNotFoundException',
          );
          // EC2 snapshots, images and tags, over the snapshot EBS direct just made.
          await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], MaxResults: 5 }));
          await ec2.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: id,
              Attribute: 'createVolumePermission',
              CreateVolumePermission: { Add: [{ UserId: OTHER }] },
            }),
          );
          await ec2.send(
            new DescribeSnapshotAttributeCommand({
              SnapshotId: id,
              Attribute: 'createVolumePermission',
            }),
          );
          await ec2.send(
            new ResetSnapshotAttributeCommand({
              SnapshotId: id,
              Attribute: 'createVolumePermission',
            }),
          );
          const copied = await ec2.send(
            new CopySnapshotCommand({
              SourceRegion: 'us-east-1',
              SourceSnapshotId: id,
              Description: 'copy',
              TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'c', Value: 'd' }] }],
            }),
          );
          const registered = await ec2.send(
            new RegisterImageCommand({
              Name: 'conformance',
              Architecture: 'x86_64',
              VirtualizationType: 'hvm',
              BootMode: 'uefi',
              EnaSupport: true,
              RootDeviceName: '/dev/xvda',
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { SnapshotId: id, VolumeType: 'gp3' } },
                { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
              ],
              TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'a', Value: 'b' }] }],
            }),
          );
          const imageId = registered.ImageId ?? '';
          await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
          await ec2.send(
            new ModifyImageAttributeCommand({
              ImageId: imageId,
              LaunchPermission: { Add: [{ UserId: OTHER }, { Group: 'all' }] },
            }),
          );
          await ec2.send(
            new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }),
          );
          await ec2.send(
            new DescribeImageAttributeCommand({
              ImageId: imageId,
              Attribute: 'blockDeviceMapping',
            }),
          );
          await ec2.send(
            new ResetImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }),
          );
          await ec2.send(
            new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'e', Value: 'f' }] }),
          );
          await ec2.send(new DescribeTagsCommand({ MaxResults: 5 }));
          await ec2.send(new DeleteTagsCommand({ Resources: [imageId], Tags: [{ Key: 'e' }] }));
          await ec2.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: imageId,
              Name: 'conformance-copy',
            }),
          );
          await expectError(
            ec2.send(new DeleteSnapshotCommand({ SnapshotId: id })),
            'InvalidSnapshot.InUse',
          );
          await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
          await ec2.send(new DeleteSnapshotCommand({ SnapshotId: copied.SnapshotId ?? '' }));
          await expectError(
            ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-0000000000000000a'] })),
            'InvalidAMIID.NotFound',
          );
          // S3, then VM Import from it into the image registry.
          const s3 = new S3Client({ ...config, forcePathStyle: true });
          await s3Scenario(s3);
          await importScenario(s3, ec2, dir, held);
          for (const c of [sts, kms, ec2, ebs, s3]) c.destroy();
        } finally {
          await proxy.close();
        }

        // Check every exchange; then that every implemented operation succeeded at least once.
        const problems: string[] = [];
        const succeeded = new Map<Service, Set<string>>();
        for (const ex of proxy.exchanges) {
          const service = serviceOf(ex) as Service | undefined;
          const model = service === undefined ? undefined : models.get(service);
          if (service === undefined || model === undefined) {
            problems.push(`${ex.method} ${ex.url}: no model for its service`);
            continue;
          }
          const checked: Checked = checkExchange(model, ex);
          for (const p of checked.problems) {
            const line = `${service} ${checked.operation ?? '?'} (${checked.status}): ${p}`;
            if (!NEWER_THAN_MODEL.some((re) => re.test(line))) problems.push(line);
          }
          if (checked.status < 300 && checked.operation !== undefined) {
            const set = succeeded.get(service) ?? new Set<string>();
            set.add(checked.operation);
            succeeded.set(service, set);
          }
        }
        assert.deepEqual(problems, []);
        for (const [service, model] of models) {
          const ops = await implemented(url, service, model);
          assert.ok(ops.length > 0, `${service}: nothing implemented?`);
          const missing = ops.filter((op) => !succeeded.get(service)?.has(op));
          assert.deepEqual(missing, [], `${service}: implemented but not driven by this test`);
        }
      },
      {
        config: CONFIG,
        extra: {
          vmImport: { boot: { enabled: false }, checkpoint: held.checkpoint },
          instances: { qemu: null },
        },
      },
    );
  });
});
