import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { DEFAULT_RETRY_POLICY, retryConfig } from '../retry.js';
import type { Placement } from '../types.js';
import { blockPut, type PutBlock } from './block-put.js';

/** The SDK v3 clients one placement (an account in a region) is published with. */
export interface AwsClients {
  readonly ec2: EC2Client;
  /** EBS direct. It does not retry by itself (maxAttempts 1): the uploader's retries adapt its concurrency. */
  readonly ebs: EBSClient;
  readonly s3: S3Client;
  readonly sts: STSClient;
  /** To name KMS keys by ARN (EBS direct takes only ARNs; aliases are resolved). */
  readonly kms: KMSClient;
  readonly region: string;
  /**
   * PutSnapshotBlock without the SDK's per-request stack (block-put.ts), on
   * the EBS client's endpoint and credentials; absent: the uploader sends
   * PutSnapshotBlockCommand.
   */
  readonly putBlock?: PutBlock;
  /** Closes the clients and their sockets. */
  destroy(): void;
}

export interface AwsClientsOptions {
  /** Requests in flight at once; the keep-alive agents keep this many sockets (plus a few). */
  readonly concurrency: number;
  /** For EC2, KMS, S3 and STS (default: retry.ts's DEFAULT_RETRY_POLICY). */
  readonly retryStrategy?: EC2ClientConfig['retryStrategy'];
  /** Milliseconds a request may take before it fails (default 120 s; a block is 512 KiB). */
  readonly requestTimeoutMs?: number;
  /**
   * Send PutSnapshotBlock's payload as UNSIGNED-PAYLOAD (default true): the
   * SDK otherwise hashes every 512 KiB body to sign it, on top of the
   * checksum the request already carries.
   */
  readonly unsignedBlocks?: boolean;
  /** Send blocks with block-put.ts rather than the SDK (default true). */
  readonly directBlocks?: boolean;
}

const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/**
 * EBS PutSnapshotBlock is an unsigned-payload operation (its model says so,
 * and botocore sends UNSIGNED-PAYLOAD over https), but this SDK version hashes
 * a Buffer body to sign it whatever the scheme. Setting the header before
 * signing makes the signer use it as the payload hash: the body is hashed
 * once, for its x-amz-Checksum, and the server checks that checksum.
 */
function addUnsignedBlocks(ebs: EBSClient): void {
  ebs.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (context.commandName === 'PutSnapshotBlockCommand' && request?.headers !== undefined) {
        request.headers['x-amz-content-sha256'] = UNSIGNED_PAYLOAD;
      }
      return next(args);
    },
    { step: 'build', name: 'ferryUnsignedBlockPayload' },
  );
}

/** Clients for a placement's region, endpoint and credentials, sharing keep-alive agents. */
export function awsClients(placement: Placement, options: AwsClientsOptions): AwsClients {
  const sockets = Math.max(1, options.concurrency) + 4;
  const httpAgent = new HttpAgent({
    keepAlive: true,
    maxSockets: sockets,
    maxFreeSockets: sockets,
  });
  const httpsAgent = new HttpsAgent({
    keepAlive: true,
    maxSockets: sockets,
    maxFreeSockets: sockets,
  });
  const requestHandler = {
    httpAgent,
    httpsAgent,
    connectionTimeout: 10_000,
    requestTimeout: options.requestTimeoutMs ?? 120_000,
  };
  const common = {
    region: placement.region,
    credentials: placement.credentials,
    requestHandler,
    ...(placement.endpoint === undefined ? {} : { endpoint: placement.endpoint }),
  };
  const retry =
    options.retryStrategy === undefined
      ? retryConfig(DEFAULT_RETRY_POLICY)
      : { retryStrategy: options.retryStrategy };
  const ec2 = new EC2Client({ ...common, ...retry });
  const ebs = new EBSClient({ ...common, maxAttempts: 1 });
  if (options.unsignedBlocks !== false) addUnsignedBlocks(ebs);
  const s3 = new S3Client({
    ...common,
    ...retry,
    ...(placement.endpoint === undefined ? {} : { forcePathStyle: true }),
  });
  const sts = new STSClient({ ...common, ...retry });
  const kms = new KMSClient({ ...common, ...retry });
  const putBlock =
    options.directBlocks === false
      ? undefined
      : blockPut(ebs, {
          httpAgent,
          httpsAgent,
          requestTimeoutMs: requestHandler.requestTimeout,
        });
  return {
    ec2,
    ebs,
    s3,
    sts,
    kms,
    region: placement.region,
    ...(putBlock === undefined ? {} : { putBlock }),
    destroy: () => {
      for (const c of [ec2, ebs, s3, sts, kms]) c.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
