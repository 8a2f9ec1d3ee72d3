/**
 * The local cloud through clients that share no code with ferry or the JS
 * SDK: the AWS CLI v2 and boto3, both from Debian (botocore's own
 * serializers and parsers). Each walks STS, KMS, EC2 and EBS direct; the
 * exchanges go through the recording proxy and are checked against the
 * models too. Skipped, with the reason, when a client is not installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadModel, type ServiceModel } from '../helpers/botocore-model.js';
import { withCloud } from '../helpers/cloud.js';
import { block, sha256b64 } from '../helpers/ebs.js';
import { RecordingProxy } from '../helpers/recording-proxy.js';
import { checkExchange } from '../helpers/wire-conformance.js';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';

function clientEnv(dir: string, secret = 'test'): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/bin:/bin',
    HOME: dir,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

function boto3Missing(): string | false {
  if (!existsSync(PYTHON)) return 'no /usr/bin/python3';
  return spawnSync(PYTHON, ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0
    ? false
    : 'python3-boto3 is not installed';
}

const models: Record<string, ServiceModel | null> = {
  sts: loadModel('sts', '2011-06-15'),
  kms: loadModel('kms', '2014-11-01'),
  ec2: loadModel('ec2', '2016-11-15'),
  ebs: loadModel('ebs', '2019-11-02'),
};

/** Problems the models find in what the proxy saw (known newer members aside). */
function conformance(proxy: RecordingProxy): string[] {
  const problems: string[] = [];
  for (const ex of proxy.exchanges) {
    const auth = String(ex.requestHeaders.authorization ?? '');
    const service = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(auth)?.[1] ?? '';
    const model = models[service];
    if (model === undefined || model === null) continue;
    for (const p of checkExchange(model, ex).problems) {
      const line = `${service}: ${p}`;
      if (!/SseType is not a body member|PolicyName is not a body member/.test(line))
        problems.push(line);
    }
  }
  return problems;
}

const BOTO3_WALK = `
import base64, hashlib, json, sys
import boto3, botocore
url, blockfile = sys.argv[1], sys.argv[2]
s = boto3.session.Session(aws_access_key_id='test', aws_secret_access_key='test', region_name='eu-west-1')
cfg = botocore.config.Config(retries={'max_attempts': 1})
out = {}
out['account'] = s.client('sts', endpoint_url=url, config=cfg).get_caller_identity()['Account']
kms = s.client('kms', endpoint_url=url, config=cfg)
out['ebsKey'] = kms.describe_key(KeyId='alias/aws/ebs')['KeyMetadata']['KeyManager']
key = kms.create_key(Description='boto3')['KeyMetadata']['KeyId']
kms.create_alias(AliasName='alias/boto3', TargetKeyId=key)
out['aliases'] = sorted(a['AliasName'] for a in kms.list_aliases()['Aliases'])
ec2 = s.client('ec2', endpoint_url=url, config=cfg)
out['regions'] = [r['RegionName'] for r in ec2.describe_regions(RegionNames=['eu-west-1', 'us-east-1'])['Regions']]
ebs = s.client('ebs', endpoint_url=url, config=cfg)
data = open(blockfile, 'rb').read()
snap = ebs.start_snapshot(VolumeSize=1, Description='boto3')['SnapshotId']
digest = hashlib.sha256(data).digest()
ebs.put_snapshot_block(SnapshotId=snap, BlockIndex=5, BlockData=data, DataLength=len(data),
    Checksum=base64.b64encode(digest).decode(), ChecksumAlgorithm='SHA256')
agg = base64.b64encode(hashlib.sha256(digest).digest()).decode()
out['status'] = ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=1, Checksum=agg,
    ChecksumAlgorithm='SHA256', ChecksumAggregationMethod='LINEAR')['Status']
blocks = ebs.list_snapshot_blocks(SnapshotId=snap)['Blocks']
out['blocks'] = [b['BlockIndex'] for b in blocks]
got = ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=5, BlockToken=blocks[0]['BlockToken'])
out['same'] = got['BlockData'].read() == data
try:
    ebs.put_snapshot_block(SnapshotId=snap, BlockIndex=6, BlockData=data, DataLength=len(data),
        Checksum=base64.b64encode(digest).decode(), ChecksumAlgorithm='SHA256')
    out['late'] = 'accepted'
except botocore.exceptions.ClientError as e:
    out['late'] = e.response['Error']['Code']
print(json.dumps(out))
`;

describe('cloud: independent clients (AWS CLI v2, boto3)', () => {
  it('the AWS CLI walks STS, KMS, EC2 and EBS direct', {
    skip: existsSync(AWS) ? false : 'the AWS CLI (Debian awscli) is not installed',
  }, async () => {
    await withCloud(async ({ url, dir }) => {
      const proxy = new RecordingProxy(url);
      const via = await proxy.listen();
      const aws = async (...args: string[]) =>
        JSON.parse(
          (
            await run(AWS, ['--endpoint-url', via, '--output', 'json', ...args], {
              env: clientEnv(dir),
            })
          ).stdout || '{}',
        ) as Record<string, unknown>;
      try {
        const me = await aws('sts', 'get-caller-identity');
        assert.equal(me.Account, '000000000000');
        const key = (await aws('kms', 'create-key', '--description', 'cli')) as {
          KeyMetadata: { KeyId: string; KeyState: string };
        };
        assert.equal(key.KeyMetadata.KeyState, 'Enabled');
        const ebsKey = (await aws('kms', 'describe-key', '--key-id', 'alias/aws/ebs')) as {
          KeyMetadata: { KeyManager: string };
        };
        assert.equal(ebsKey.KeyMetadata.KeyManager, 'AWS');
        const regions = (await aws(
          'ec2',
          'describe-regions',
          '--filters',
          'Name=region-name,Values=eu-west-*',
        )) as { Regions: Array<{ RegionName: string }> };
        assert.deepEqual(regions.Regions.map((r) => r.RegionName).sort(), [
          'eu-west-1',
          'eu-west-2',
          'eu-west-3',
        ]);

        const data = block(11);
        const file = join(dir, 'block.bin');
        await writeFile(file, data);
        const snap = (await aws('ebs', 'start-snapshot', '--volume-size', '1')) as {
          SnapshotId: string;
        };
        await aws(
          'ebs',
          'put-snapshot-block',
          '--snapshot-id',
          snap.SnapshotId,
          '--block-index',
          '2',
          '--block-data',
          file,
          '--data-length',
          String(data.length),
          '--checksum',
          sha256b64(data),
          '--checksum-algorithm',
          'SHA256',
        );
        const done = await aws(
          'ebs',
          'complete-snapshot',
          '--snapshot-id',
          snap.SnapshotId,
          '--changed-blocks-count',
          '1',
        );
        assert.equal(done.Status, 'completed');
        const listed = (await aws(
          'ebs',
          'list-snapshot-blocks',
          '--snapshot-id',
          snap.SnapshotId,
        )) as {
          Blocks: Array<{ BlockIndex: number; BlockToken: string }>;
        };
        assert.deepEqual(
          listed.Blocks.map((b) => b.BlockIndex),
          [2],
        );
        const outFile = join(dir, 'got.bin');
        await aws(
          'ebs',
          'get-snapshot-block',
          '--snapshot-id',
          snap.SnapshotId,
          '--block-index',
          '2',
          '--block-token',
          listed.Blocks[0]?.BlockToken ?? '',
          outFile,
        );
        assert.ok((await readFile(outFile)).equals(data));

        // A wrong secret: the CLI fails with AWS's code.
        await assert.rejects(
          run(AWS, ['--endpoint-url', via, 'sts', 'get-caller-identity'], {
            env: clientEnv(dir, 'wrong'),
          }),
          (e: Error & { stderr?: string; code?: number }) => {
            assert.match(e.stderr ?? '', /SignatureDoesNotMatch/);
            assert.notEqual(e.code, 0);
            return true;
          },
        );
      } finally {
        await proxy.close();
      }
      assert.deepEqual(conformance(proxy), []);
    });
  });

  it('boto3 walks STS, KMS, EC2 and EBS direct', { skip: boto3Missing() }, async () => {
    await withCloud(async ({ url, dir }) => {
      const proxy = new RecordingProxy(url);
      const via = await proxy.listen();
      const data = block(12);
      const file = join(dir, 'block.bin');
      await writeFile(file, data);
      try {
        const { stdout } = await run(PYTHON, ['-c', BOTO3_WALK, via, file], {
          env: clientEnv(dir),
        });
        const out = JSON.parse(stdout) as Record<string, unknown>;
        assert.deepEqual(out, {
          account: '000000000000',
          ebsKey: 'AWS',
          aliases: ['alias/aws/ebs', 'alias/boto3'],
          regions: ['eu-west-1', 'us-east-1'],
          status: 'completed',
          blocks: [5],
          same: true,
          late: 'ValidationException',
        });
      } finally {
        await proxy.close();
      }
      assert.deepEqual(conformance(proxy), []);
    });
  });
});
