import { EbsError } from './ebs-error.js';

/** The operations of the EBS direct API. */
export type EbsOperation =
  | 'StartSnapshot'
  | 'PutSnapshotBlock'
  | 'CompleteSnapshot'
  | 'ListSnapshotBlocks'
  | 'ListChangedBlocks'
  | 'GetSnapshotBlock';

export interface RateLimit {
  /** Requests per second, sustained. */
  readonly perSecond: number;
  /** Requests allowed at once after an idle spell (default: perSecond, at least 1). */
  readonly burst?: number;
}

export type RateLimits = Readonly<Partial<Record<EbsOperation, RateLimit>>>;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets per account, region and operation, as AWS's EBS direct API
 * quotas are (for example CompleteSnapshot requests per account). An
 * operation without a configured limit is never throttled.
 */
export class RateLimiter {
  private readonly limits: RateLimits;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(limits: RateLimits, now: () => number) {
    this.limits = limits;
    this.now = now;
  }

  /** Takes one request from the bucket, or throws RequestThrottledException. */
  take(account: string, region: string, op: EbsOperation): void {
    const limit = this.limits[op];
    if (limit === undefined) return;
    const burst = limit.burst ?? Math.max(1, limit.perSecond);
    const key = `${account}/${region}/${op}`;
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * limit.perSecond);
    b.at = now;
    if (b.tokens < 1) {
      throw new EbsError(
        'RequestThrottledException',
        `The ${op} request rate of account ${account} exceeds ${limit.perSecond} per second.`,
        'ACCOUNT_THROTTLED',
      );
    }
    b.tokens -= 1;
  }
}
