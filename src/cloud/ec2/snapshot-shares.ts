/**
 * Who may use a snapshot besides its owner (its createVolumePermission):
 * accounts by id and `all`. Kept in the owner's `ec2-snapshots` document
 * per region, beside nothing else, so a share survives restarts and a
 * snapshot's record in the EBS engine stays the engine's.
 */
import type { StateStore } from '../state-store.js';
import type { Caller } from './tags.js';

export interface Share {
  readonly users: readonly string[];
  readonly public: boolean;
}

interface SharesDoc {
  shares: Record<string, Share>;
}

const SERVICE = 'ec2-snapshots';
const empty = (): SharesDoc => ({ shares: {} });
const NONE: Share = { users: [], public: false };

/** Accounts a snapshot may be shared with at once (AWS documents no lower cap). */
export const MAX_SHARED_USERS = 1000;

export class SnapshotShares {
  private readonly state: StateStore;

  constructor(state: StateStore) {
    this.state = state;
  }

  async get(owner: Caller, snapshotId: string): Promise<Share> {
    const doc = await this.state.read(owner.account, owner.region, SERVICE, empty);
    return Object.hasOwn(doc.shares, snapshotId) ? doc.shares[snapshotId]! : NONE;
  }

  /** Every shared snapshot of the owner in the region. */
  async all(owner: Caller): Promise<ReadonlyArray<[string, Share]>> {
    const doc = await this.state.read(owner.account, owner.region, SERVICE, empty);
    return Object.entries(doc.shares);
  }

  /** Applies `change` to a snapshot's share atomically; an empty share is dropped. */
  async update(owner: Caller, snapshotId: string, change: (share: Share) => Share): Promise<Share> {
    return this.state.update(owner.account, owner.region, SERVICE, empty, (doc) => {
      const current = Object.hasOwn(doc.shares, snapshotId) ? doc.shares[snapshotId]! : NONE;
      const next = change(current);
      if (next.users.length === 0 && !next.public) delete doc.shares[snapshotId];
      else doc.shares[snapshotId] = { users: [...next.users].sort(), public: next.public };
      return next;
    });
  }

  async remove(owner: Caller, snapshotId: string): Promise<void> {
    const doc = await this.state.read(owner.account, owner.region, SERVICE, empty);
    if (!Object.hasOwn(doc.shares, snapshotId)) return;
    await this.update(owner, snapshotId, () => NONE);
  }
}

export function sharedWith(share: Share, account: string): boolean {
  return share.public || share.users.includes(account);
}
