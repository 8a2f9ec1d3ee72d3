import { invalid } from './ebs-error.js';
import {
  BLOCKS_PER_GIB,
  DEFAULT_TIMEOUT_MINUTES,
  MAX_CLIENT_TOKEN,
  MAX_DESCRIPTION,
  MAX_MAX_RESULTS,
  MAX_TAG_KEY,
  MAX_TAG_VALUE,
  MAX_TAGS,
  MAX_TIMEOUT_MINUTES,
  MAX_VOLUME_GIB,
  MIN_MAX_RESULTS,
  MIN_TIMEOUT_MINUTES,
} from './limits.js';
import type { SnapshotTag } from './snapshot-record.js';

const SNAPSHOT_ID = /^snap-[0-9a-f]+$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[^:]*:[0-9]{12}:key\/.+$/;
const CHECKSUM = /^[A-Za-z0-9+/=]+$/;

export function checkSnapshotId(id: string, what = 'SnapshotId'): void {
  if (id.length > 64 || !SNAPSHOT_ID.test(id)) {
    throw invalid('INVALID_SNAPSHOT_ID', `The ${what} '${id.slice(0, 64)}' is not valid.`);
  }
}

export function checkBlockIndex(index: number, volumeSize: number): void {
  const blocks = volumeSize * BLOCKS_PER_GIB;
  if (!Number.isSafeInteger(index) || index < 0 || index >= blocks) {
    throw invalid(
      'INVALID_BLOCK',
      `The block index ${index} is out of range: a ${volumeSize} GiB volume has blocks 0 to ${blocks - 1}.`,
    );
  }
}

export function checkMaxResults(n: number | undefined): number {
  if (n === undefined) return MAX_MAX_RESULTS;
  if (!Number.isSafeInteger(n) || n < MIN_MAX_RESULTS || n > MAX_MAX_RESULTS) {
    throw invalid(
      'INVALID_PARAMETER_VALUE',
      `MaxResults must be between ${MIN_MAX_RESULTS} and ${MAX_MAX_RESULTS}, not ${n}.`,
    );
  }
  return n;
}

export function checkStartingBlockIndex(n: number | undefined): number {
  if (n === undefined) return 0;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw invalid('INVALID_PARAMETER_VALUE', `StartingBlockIndex must be 0 or more, not ${n}.`);
  }
  return n;
}

/** Decodes a base64 SHA-256 checksum to its 32 bytes, or throws. */
export function decodeChecksum(checksum: string, what: string): Buffer {
  const b =
    CHECKSUM.test(checksum) && checksum.length <= 64 ? Buffer.from(checksum, 'base64') : null;
  if (b === null || b.length !== 32) {
    throw invalid('INVALID_PARAMETER_VALUE', `The ${what} is not a base64 SHA-256 checksum.`);
  }
  return b;
}

export function checkAlgorithm(algorithm: string | undefined): void {
  if (algorithm !== 'SHA256') {
    throw invalid(
      'INVALID_PARAMETER_VALUE',
      `The checksum algorithm must be SHA256, not '${String(algorithm).slice(0, 32)}'.`,
    );
  }
}

export interface StartSnapshotInput {
  readonly volumeSize: number;
  readonly parentSnapshotId?: string | undefined;
  readonly tags?: readonly SnapshotTag[] | undefined;
  readonly description?: string | undefined;
  readonly clientToken?: string | undefined;
  readonly encrypted?: boolean | undefined;
  readonly kmsKeyArn?: string | undefined;
  /** Minutes. */
  readonly timeout?: number | undefined;
}

export interface NormalStart {
  readonly volumeSize: number;
  readonly parentSnapshotId: string | null;
  readonly tags: readonly SnapshotTag[];
  readonly description: string | null;
  readonly clientToken: string | null;
  readonly encrypted: boolean | null;
  readonly kmsKeyArn: string | null;
  readonly timeout: number;
}

/** Checks StartSnapshot's parameters against the model's constraints. */
export function normalStart(input: StartSnapshotInput): NormalStart {
  const v = input.volumeSize;
  if (!Number.isSafeInteger(v) || v < 1 || v > MAX_VOLUME_GIB) {
    throw invalid(
      'INVALID_VOLUME_SIZE',
      `The volume size must be 1 to ${MAX_VOLUME_GIB} GiB, not ${String(v)}.`,
    );
  }
  if (input.parentSnapshotId !== undefined) {
    checkSnapshotId(input.parentSnapshotId, 'ParentSnapshotId');
    if (input.encrypted !== undefined) {
      throw invalid(
        'INVALID_PARAMETER_VALUE',
        'ParentSnapshotId and Encrypted cannot be given in the same request.',
      );
    }
  }
  const tags = input.tags ?? [];
  if (tags.length > MAX_TAGS) {
    throw invalid(
      'INVALID_TAG',
      `A snapshot can have at most ${MAX_TAGS} tags, not ${tags.length}.`,
    );
  }
  const keys = new Set<string>();
  for (const t of tags) {
    if (typeof t.key !== 'string' || t.key.length === 0 || t.key.length > MAX_TAG_KEY) {
      throw invalid('INVALID_TAG', `A tag key must be 1 to ${MAX_TAG_KEY} characters.`);
    }
    if (t.key.toLowerCase().startsWith('aws:')) {
      throw invalid('INVALID_TAG', `The tag key '${t.key}' uses the reserved prefix aws:.`);
    }
    if (typeof t.value !== 'string' || t.value.length > MAX_TAG_VALUE) {
      throw invalid(
        'INVALID_TAG',
        `The value of tag '${t.key}' must be at most ${MAX_TAG_VALUE} characters.`,
      );
    }
    if (keys.has(t.key)) throw invalid('INVALID_TAG', `The tag key '${t.key}' is given twice.`);
    keys.add(t.key);
  }
  const d = input.description;
  if (d !== undefined && (d.length === 0 || d.length > MAX_DESCRIPTION)) {
    throw invalid(
      'INVALID_PARAMETER_VALUE',
      `The description must be 1 to ${MAX_DESCRIPTION} characters.`,
    );
  }
  const c = input.clientToken;
  if (c !== undefined && (c.length === 0 || c.length > MAX_CLIENT_TOKEN || /\s/.test(c))) {
    throw invalid(
      'INVALID_PARAMETER_VALUE',
      `The client token must be 1 to ${MAX_CLIENT_TOKEN} characters without spaces.`,
    );
  }
  const k = input.kmsKeyArn;
  if (k !== undefined && (k.length > 2048 || !KMS_KEY_ARN.test(k))) {
    throw invalid('INVALID_CUSTOMER_KEY', 'The KmsKeyArn is not the ARN of a KMS key.');
  }
  const t = input.timeout ?? DEFAULT_TIMEOUT_MINUTES;
  if (!Number.isSafeInteger(t) || t < MIN_TIMEOUT_MINUTES || t > MAX_TIMEOUT_MINUTES) {
    throw invalid(
      'INVALID_PARAMETER_VALUE',
      `The timeout must be ${MIN_TIMEOUT_MINUTES} to ${MAX_TIMEOUT_MINUTES} minutes, not ${String(t)}.`,
    );
  }
  return {
    volumeSize: v,
    parentSnapshotId: input.parentSnapshotId ?? null,
    tags: tags.map((x) => ({ key: x.key, value: x.value })),
    description: d ?? null,
    clientToken: c ?? null,
    encrypted: input.encrypted ?? null,
    kmsKeyArn: k ?? null,
    timeout: t,
  };
}
