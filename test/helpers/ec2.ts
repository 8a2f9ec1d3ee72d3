import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { TEST_CREDENTIALS } from './cloud.js';
import { block, linear, sha256b64 } from './ebs.js';

export type Credentials = { accessKeyId: string; secretAccessKey: string };

export const OWNER = '000000000000';
export const OTHER = '222222222222';
export const OTHER_KEY: Credentials = {
  accessKeyId: 'AKIAOTHEREC20001',
  secretAccessKey: 'ec2-secret',
};
export const THIRD = '333333333333';
export const THIRD_KEY: Credentials = {
  accessKeyId: 'AKIATHIRDEC20001',
  secretAccessKey: 'ec2-third',
};
/** A data directory's config with two more accounts. */
export const EC2_CONFIG = {
  accounts: [
    { id: OTHER, ...OTHER_KEY },
    { id: THIRD, ...THIRD_KEY },
  ],
};

export function ec2(
  url: string,
  credentials: Credentials = TEST_CREDENTIALS,
  region = 'us-east-1',
): EC2Client {
  return new EC2Client({ endpoint: url, region, credentials, maxAttempts: 1 });
}

export function kms(
  url: string,
  credentials: Credentials = TEST_CREDENTIALS,
  region = 'us-east-1',
): KMSClient {
  return new KMSClient({ endpoint: url, region, credentials, maxAttempts: 1 });
}

/** Makes a completed snapshot with the EBS direct API: `size` GiB, one block at index 0. */
export async function makeSnapshot(
  url: string,
  options: {
    credentials?: Credentials;
    region?: string;
    size?: number;
    encrypted?: boolean;
    kmsKeyArn?: string;
    description?: string;
    complete?: boolean;
    seed?: number;
  } = {},
): Promise<string> {
  const client = new EBSClient({
    endpoint: url,
    region: options.region ?? 'us-east-1',
    credentials: options.credentials ?? TEST_CREDENTIALS,
    maxAttempts: 1,
  });
  const start = await client.send(
    new StartSnapshotCommand({
      VolumeSize: options.size ?? 1,
      Timeout: 60,
      ...(options.encrypted === undefined ? {} : { Encrypted: options.encrypted }),
      ...(options.kmsKeyArn === undefined ? {} : { KmsKeyArn: options.kmsKeyArn }),
      ...(options.description === undefined ? {} : { Description: options.description }),
    }),
  );
  const id = start.SnapshotId!;
  const data = block(options.seed ?? 7);
  await client.send(
    new PutSnapshotBlockCommand({
      SnapshotId: id,
      BlockIndex: 0,
      BlockData: data,
      DataLength: data.length,
      Checksum: sha256b64(data),
      ChecksumAlgorithm: 'SHA256',
    }),
  );
  if (options.complete !== false)
    await client.send(
      new CompleteSnapshotCommand({
        SnapshotId: id,
        ChangedBlocksCount: 1,
        Checksum: linear([data]),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
  return id;
}

/** Asserts an SDK error's name (the EC2 code) and HTTP status. */
export function ec2Code(code: string, status = 400): (e: unknown) => boolean {
  return (e: unknown) => {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    if (err.name !== code || err.$metadata?.httpStatusCode !== status)
      throw new Error(
        `expected ${code} (${status}), got ${err.name} (${err.$metadata?.httpStatusCode}): ${err.message}`,
      );
    return true;
  };
}
