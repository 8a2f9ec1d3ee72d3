import { DescribeSnapshotsCommand, type Snapshot } from '@aws-sdk/client-ec2';
import type { BlockDigests } from '../block-digests.js';
import { TAG } from '../types.js';
import { awsCall } from './aws-call.js';
import type { AwsClients } from './clients.js';
import { resolveKmsKey } from './kms-key.js';

export interface ParentQuery {
  readonly stream: string;
  /** The target's encryption: a parent must have the same (a child cannot change it). */
  readonly encrypted: boolean;
  /** The target's key (id, alias or ARN); undefined with encrypted: the account's default EBS key. */
  readonly kmsKeyArn?: string;
  readonly signal?: AbortSignal;
}

export interface ParentSnapshot {
  readonly snapshotId: string;
  readonly contentHash: string;
  readonly digests: BlockDigests;
  readonly volumeSize: number;
  readonly startTime?: Date;
}

async function streamSnapshots(
  clients: AwsClients,
  stream: string,
  signal?: AbortSignal,
): Promise<Snapshot[]> {
  const out: Snapshot[] = [];
  let token: string | undefined;
  do {
    const r = await awsCall(
      'list the stream snapshots',
      () =>
        clients.ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [
              { Name: `tag:${TAG.stream}`, Values: [stream] },
              { Name: 'status', Values: ['completed'] },
            ],
            MaxResults: 1000,
            ...(token === undefined ? {} : { NextToken: token }),
          }),
          signal === undefined ? {} : { abortSignal: signal },
        ),
      signal === undefined ? {} : { signal },
    );
    out.push(...(r.Snapshots ?? []));
    token = r.NextToken;
  } while (token !== undefined && token !== '');
  return out;
}

/**
 * The stream's newest completed snapshot in the placement that can be the
 * parent of the next one: owned by the caller, tagged with the stream, with
 * its content hash's block digests at hand (`hasDigests`), and encrypted as
 * the target asks (an encrypted target takes only a parent under the same
 * key, an unencrypted one only an unencrypted parent). Undefined when none
 * fits: the next snapshot is then a full one.
 */
export async function findParent(
  clients: AwsClients,
  query: ParentQuery,
  hasDigests: (contentHash: string) => Promise<BlockDigests | undefined>,
): Promise<ParentSnapshot | undefined> {
  const { signal } = query;
  const snapshots = await streamSnapshots(clients, query.stream, signal);
  snapshots.sort((a, b) => (b.StartTime?.getTime() ?? 0) - (a.StartTime?.getTime() ?? 0));
  let key: string | undefined;
  for (const s of snapshots) {
    if (s.State !== 'completed' || s.SnapshotId === undefined) continue;
    if ((s.Encrypted === true) !== query.encrypted) continue;
    if (query.encrypted) {
      key ??= await resolveKmsKey(clients, query.kmsKeyArn, signal);
      if (s.KmsKeyId !== key) continue;
    }
    const tags = new Map((s.Tags ?? []).map((t) => [t.Key, t.Value]));
    if (tags.get(TAG.stream) !== query.stream) continue;
    const contentHash = tags.get(TAG.contentHash);
    if (contentHash === undefined) continue;
    const digests = await hasDigests(contentHash);
    if (digests === undefined) continue;
    return {
      snapshotId: s.SnapshotId,
      contentHash,
      digests,
      volumeSize: s.VolumeSize ?? 0,
      ...(s.StartTime === undefined ? {} : { startTime: s.StartTime }),
    };
  }
  return undefined;
}
