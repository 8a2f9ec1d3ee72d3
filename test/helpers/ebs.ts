import { createHash } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeHeader, SLOT_HEADER, SLOT_SIZE } from '../../src/cloud/ebs/block-pack.js';
import { BLOCK_SIZE } from '../../src/cloud/ebs/index.js';

export const CTX = { account: '000000000000', region: 'us-east-1' } as const;

/** A deterministic 512 KiB block for `seed`: distinct seeds give distinct data. */
export function block(seed: number): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < BLOCK_SIZE; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  b.writeUInt32BE(seed, 0);
  return b;
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function sha256b64(data: Buffer): string {
  return sha256(data).toString('base64');
}

/** The LINEAR aggregate of blocks given in index order. */
export function linear(blocks: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const b of blocks) h.update(sha256(b));
  return h.digest('base64');
}

/** A clock tests move by hand. */
export function fakeClock(start = Date.UTC(2026, 0, 1)): {
  now: () => number;
  advance: (ms: number) => void;
} {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/** Where a block named `digest` (hex) lies in the pack files of the engine at `dir`. */
export async function storedBlockAt(
  dir: string,
  digest: string,
): Promise<{ path: string; offset: number } | null> {
  for (const name of (await readdir(join(dir, 'packs'))).filter((n) => n.endsWith('.pack'))) {
    const path = join(dir, 'packs', name);
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(64);
      for (let at = 0; at + SLOT_SIZE <= size; at += SLOT_SIZE) {
        await fh.read(head, 0, head.length, at);
        if (decodeHeader(head)?.digest === digest) return { path, offset: at + SLOT_HEADER };
      }
    } finally {
      await fh.close();
    }
  }
  return null;
}

/** Every block stored in the pack files of the engine at `dir` (slots with a whole header). */
export async function storedBlockCount(dir: string): Promise<number> {
  let n = 0;
  for (const name of (await readdir(join(dir, 'packs'))).filter((x) => x.endsWith('.pack'))) {
    const bytes = await readFile(join(dir, 'packs', name));
    for (let at = 0; at + SLOT_SIZE <= bytes.length; at += SLOT_SIZE) {
      if (decodeHeader(bytes.subarray(at, at + SLOT_HEADER)) !== null) n++;
    }
  }
  return n;
}
