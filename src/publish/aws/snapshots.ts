import { DeleteSnapshotCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { FerryError } from '../../errors/index.js';
import { awsCall, awsErrorCode, sleep } from './aws-call.js';
import type { AwsClients } from './clients.js';

/** The snapshot's state per EC2 DescribeSnapshots; 'missing' when it is gone. */
export async function snapshotState(
  clients: AwsClients,
  snapshotId: string,
  signal?: AbortSignal,
): Promise<{ state: string; message?: string }> {
  try {
    const r = await awsCall(
      'describe the snapshot',
      () =>
        clients.ec2.send(
          new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }),
          signal === undefined ? {} : { abortSignal: signal },
        ),
      signal === undefined ? {} : { signal },
    );
    const s = r.Snapshots?.[0];
    if (s === undefined) return { state: 'missing' };
    return {
      state: s.State ?? 'unknown',
      ...(s.StateMessage === undefined ? {} : { message: s.StateMessage }),
    };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    if (awsErrorCode(cause) === 'InvalidSnapshot.NotFound') return { state: 'missing' };
    throw error;
  }
}

/** Deletes a snapshot (cleanup); true when it existed. */
export async function deleteSnapshot(
  clients: AwsClients,
  snapshotId: string,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    await awsCall(
      'delete the snapshot',
      () =>
        clients.ec2.send(
          new DeleteSnapshotCommand({ SnapshotId: snapshotId }),
          signal === undefined ? {} : { abortSignal: signal },
        ),
      signal === undefined ? {} : { signal },
    );
    return true;
  } catch (error) {
    if (awsErrorCode((error as { cause?: unknown }).cause) === 'InvalidSnapshot.NotFound')
      return false;
    throw error;
  }
}

/** Polls DescribeSnapshots (backing off to 15 s) until the snapshot is completed. */
export async function waitCompleted(
  clients: AwsClients,
  snapshotId: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 250; ; delay = Math.min(15_000, delay * 1.5)) {
    const { state, message } = await snapshotState(clients, snapshotId, signal);
    if (state === 'completed') return;
    if (state !== 'pending' || Date.now() > deadline) {
      throw new FerryError(
        'FERRY_EBS_SNAPSHOT_FAILED',
        `Cannot finish snapshot ${snapshotId}: it is ${state}${message === undefined ? '' : ` (${message})`}${state === 'pending' ? ` after ${Math.round(timeoutMs / 1000)} s` : ''}`,
        { details: { snapshotId, state, message: message ?? null } },
      );
    }
    await sleep(delay, signal);
  }
}
