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
import { DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
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
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { loadModel, type ServiceModel } from '../helpers/botocore-model.js';
import { send, signRequest, TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { block, sha256b64 } from '../helpers/ebs.js';
import { type Exchange, RecordingProxy } from '../helpers/recording-proxy.js';
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
    skip: models.size < Object.keys(VERSIONS).length ? 'python3-botocore is not installed' : false,
  }, async () => {
    await withCloud(
      async ({ url }) => {
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
          for (const c of [sts, kms, ec2, ebs]) c.destroy();
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
      { config: CONFIG },
    );
  });
});
