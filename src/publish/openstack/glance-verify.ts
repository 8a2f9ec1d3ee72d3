/**
 * `ferry verify` for a Glance image: its data downloaded (into the state
 * directory, removed after), read as the disk format it is in, and every
 * 512 KiB block compared with the digests the publish saved for the
 * rendered image. A zero block and a hole are the same disk content, so
 * they compare equal whatever the format made of them. The kernel and
 * ramdisk an AMI names must still be there and active.
 */

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../errors/index.js';
import type { VerifyResult } from '../aws/verify.js';
import { type BlockDigests, blockDigests } from '../block-digests.js';
import { openBlockSource } from '../block-source.js';
import { ZERO_BLOCK_SHA256 } from '../digest-table.js';
import type { GlanceClient } from './glance-client.js';

export async function verifyGlanceImage(
  client: GlanceClient,
  image: { readonly imageId: string; readonly partIds: readonly string[] },
  expected: { readonly blockCount: number; readonly digests: BlockDigests },
  dir: string,
  signal?: AbortSignal,
): Promise<VerifyResult> {
  const o = signal === undefined ? {} : { signal };
  for (const id of image.partIds) {
    const part = await client.getImage(id, o);
    if (part === null || part.status !== 'active')
      throw new FerryError(
        'FERRY_PUBLISH_IMAGE_NOT_FOUND',
        `Cannot verify image ${image.imageId}: the kernel or ramdisk ${id} it names is ${part === null ? 'gone' : part.status}`,
        { details: { imageId: image.imageId, part: id } },
      );
  }
  const file = join(dir, `verify-${image.imageId}-${randomBytes(4).toString('hex')}`);
  try {
    await client.downloadData(image.imageId, file, o);
    const source = await openBlockSource(file, o);
    let got: Map<number, string>;
    try {
      got = await blockDigests(source, o);
    } finally {
      await source.close();
    }
    const mismatches: number[] = [];
    const missing: number[] = [];
    const extra: number[] = [];
    const count = Math.max(expected.blockCount, source.blockCount);
    for (let i = 0; i < count; i++) {
      const want = expected.digests.get(i) ?? ZERO_BLOCK_SHA256;
      const have = got.get(i) ?? ZERO_BLOCK_SHA256;
      if (want === have) continue;
      if (i >= source.blockCount) missing.push(i);
      else if (i >= expected.blockCount) extra.push(i);
      else mismatches.push(i);
    }
    return {
      blocks: got.size,
      mismatches,
      missing,
      extra,
      ok: mismatches.length + missing.length + extra.length === 0,
    };
  } finally {
    await rm(file, { force: true });
  }
}
