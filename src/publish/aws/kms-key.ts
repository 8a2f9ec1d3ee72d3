import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { awsCall } from './aws-call.js';
import type { AwsClients } from './clients.js';

/** The account's default EBS key. */
export const DEFAULT_EBS_KEY = 'alias/aws/ebs';

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/;

/**
 * The key ARN a key id, alias or ARN names (undefined: the account's
 * default EBS key). EBS direct's KmsKeyArn takes only an ARN, and
 * snapshots report their key by ARN.
 */
export async function resolveKmsKey(
  clients: AwsClients,
  keyId: string | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const id = keyId ?? DEFAULT_EBS_KEY;
  if (KEY_ARN.test(id)) return id;
  const r = await awsCall(
    'describe the KMS key',
    () =>
      clients.kms.send(
        new DescribeKeyCommand({ KeyId: id }),
        signal === undefined ? {} : { abortSignal: signal },
      ),
    signal === undefined ? {} : { signal },
  );
  return r.KeyMetadata?.Arn ?? id;
}
