import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DEFAULT_RETRY_POLICY, retryConfig } from '../retry.js';
import { awsPlacement, type Placement } from '../types.js';

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
  /** The signal every EBS request is aborted with (AwsClientsOptions.signal). */
  readonly signal: AbortSignal | undefined;
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
  /**
   * Aborts every EBS request in flight, without the call passing it: a send
   * with no options of its own may use the EBS client's cached middleware
   * (see ebsSendOptions).
   */
  readonly signal?: AbortSignal;
}

type HandleArgs = Parameters<NodeHttpHandler['handle']>;

/** A NodeHttpHandler that aborts each request with `signal` unless the call brings its own. */
class SignalledHttpHandler extends NodeHttpHandler {
  readonly #signal: AbortSignal;

  constructor(options: ConstructorParameters<typeof NodeHttpHandler>[0], signal: AbortSignal) {
    super(options);
    this.#signal = signal;
  }

  override handle(
    request: HandleArgs[0],
    options: HandleArgs[1] = {},
  ): ReturnType<NodeHttpHandler['handle']> {
    return super.handle(
      request,
      options.abortSignal === undefined ? { ...options, abortSignal: this.#signal } : options,
    );
  }
}

/**
 * The options for an EBS send under `signal`: none when the clients already
 * abort with it, so that the EBS client's cached middleware serves the call
 * (an SDK send with options resolves its middleware stack anew, about
 * 0.45 ms of the client's CPU per PutSnapshotBlock measured here, 2.1
 * against 2.55 ms; docs/benchmarks.md), else the signal as the call's own.
 */
export function ebsSendOptions(
  clients: Pick<AwsClients, 'signal'>,
  signal: AbortSignal | undefined,
): { abortSignal: AbortSignal } | undefined {
  return signal === undefined || signal === clients.signal ? undefined : { abortSignal: signal };
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
export function awsClients(given: Placement, options: AwsClientsOptions): AwsClients {
  const placement = awsPlacement(given);
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
  // cacheMiddleware: the client resolves each command's middleware stack
  // once. The context that stack shares across calls holds only what this
  // client's configuration decides (endpoint, auth scheme, signing region
  // and service are the same for every EBS call: its endpoint rules read no
  // input member), so concurrent calls do not disturb one another.
  const ebs = new EBSClient({
    ...common,
    ...(options.signal === undefined
      ? {}
      : { requestHandler: new SignalledHttpHandler(requestHandler, options.signal) }),
    maxAttempts: 1,
    cacheMiddleware: true,
  });
  if (options.unsignedBlocks !== false) addUnsignedBlocks(ebs);
  const s3 = new S3Client({
    ...common,
    ...retry,
    ...(placement.endpoint === undefined ? {} : { forcePathStyle: true }),
  });
  const sts = new STSClient({ ...common, ...retry });
  const kms = new KMSClient({ ...common, ...retry });
  return {
    ec2,
    ebs,
    s3,
    sts,
    kms,
    region: placement.region,
    signal: options.signal,
    destroy: () => {
      for (const c of [ec2, ebs, s3, sts, kms]) c.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
