import { open } from 'node:fs/promises';
import { nativeBinding } from '../../src/disk/seek-data.js';
import { type AwsClients, awsClients } from '../../src/publish/aws/clients.js';
import type { EbsCheckpoint } from '../../src/publish/aws/ebs-upload.js';
import {
  type AwsPlacement,
  BLOCK_SIZE,
  type Checkpoint,
  type PublishEvent,
} from '../../src/publish/types.js';
import { block } from './ebs.js';

export const ACCOUNT = '000000000000';

/** Holes in a raw file are seen through SEEK_DATA, which needs the native binding. */
export const NEEDS_HOLES: string | false =
  nativeBinding() === null
    ? 'holes in raw images need the SEEK_DATA binding (`npm ci` builds it when a C compiler is present)'
    : false;

/** A placement on the local cloud at `url`, account 000000000000 (test/test). */
export function testPlacement(url: string, overrides: Partial<AwsPlacement> = {}): AwsPlacement {
  return {
    cloud: 'aws',
    target: 'local',
    region: 'us-east-1',
    key: 'local/us-east-1',
    endpoint: url,
    credentials: async () => ({ accessKeyId: 'test', secretAccessKey: 'test' }),
    encrypted: false,
    shareWith: [],
    tags: {},
    ...overrides,
  };
}

/** Clients for a placement; the caller destroys them. */
export function testClients(
  url: string,
  concurrency = 8,
  overrides: Partial<AwsPlacement> = {},
): AwsClients {
  return awsClients(testPlacement(url, overrides), { concurrency });
}

/** An in-memory checkpoint that counts its saves. */
export class MemoryCheckpoint implements Checkpoint<EbsCheckpoint> {
  value: EbsCheckpoint | undefined;
  saves = 0;
  async load(): Promise<EbsCheckpoint | undefined> {
    return this.value === undefined ? undefined : structuredClone(this.value);
  }
  async save(value: EbsCheckpoint): Promise<void> {
    this.saves++;
    this.value = structuredClone(value);
  }
}

/** What a block of a test image holds: seeded data, explicit zeros, or nothing (a hole). */
export type BlockSpec = number | 'zero' | 'hole';

/**
 * Writes a sparse raw image of 512 KiB blocks: a number is `block(seed)`,
 * 'zero' is written zeros (allocated), 'hole' is never written. `tail`
 * shortens the last block (a size that is not a multiple of 512 KiB).
 */
export async function writeBlocks(
  path: string,
  specs: readonly BlockSpec[],
  tail = 0,
): Promise<Buffer[]> {
  const fh = await open(path, 'w');
  const contents: Buffer[] = [];
  try {
    const size = specs.length * BLOCK_SIZE - tail;
    await fh.truncate(size);
    for (const [i, s] of specs.entries()) {
      const data = s === 'hole' || s === 'zero' ? Buffer.alloc(BLOCK_SIZE) : block(s);
      if (i === specs.length - 1 && tail > 0) data.fill(0, BLOCK_SIZE - tail);
      contents.push(data);
      const len = i === specs.length - 1 ? BLOCK_SIZE - tail : BLOCK_SIZE;
      if (s !== 'hole') await fh.write(data, 0, len, i * BLOCK_SIZE);
    }
  } finally {
    await fh.close();
  }
  return contents;
}

/** Collects events of one type. */
export function events(): { list: PublishEvent[]; on: (e: PublishEvent) => void } {
  const list: PublishEvent[] = [];
  return { list, on: (e) => list.push(e) };
}
