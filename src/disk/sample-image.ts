import { createHash } from 'node:crypto';
import { OutputFile } from './output-file.js';

/**
 * Writes a deterministic sample raw disk: an MBR with one Linux partition,
 * pseudo-random data regions, explicit zero runs and holes, and a tail that
 * is not a multiple of any format's cluster size. Used by `ferry demo` and tests.
 */
export async function writeSampleImage(path: string, size: number): Promise<void> {
  const out = await OutputFile.create(path, { overwrite: true });
  try {
    const mbr = Buffer.alloc(512);
    mbr.writeUInt8(0x80, 446); // bootable
    mbr.writeUInt8(0x83, 446 + 4); // Linux
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(Math.floor(size / 512) - 2048, 446 + 12);
    mbr.writeUInt16LE(0xaa55, 510);
    await out.write(mbr, 0);
    const block = 64 * 1024;
    let seed = Buffer.from('ferry-sample');
    for (let off = 1024 * 1024; off + block <= size; off += block) {
      const n = off / block;
      // About half the blocks hold data; every 7th is written as explicit zeros.
      if (n % 3 === 1) continue;
      if (n % 7 === 0) {
        await out.write(Buffer.alloc(block), off);
        continue;
      }
      const chunks: Buffer[] = [];
      for (let i = 0; i < block / 64; i++) {
        seed = createHash('sha512').update(seed).digest();
        chunks.push(seed);
      }
      await out.write(Buffer.concat(chunks), off);
    }
    const tail = Buffer.alloc(size % block === 0 ? 512 : size % block, 0x5a);
    await out.truncate(size);
    await out.write(tail, size - tail.length);
    await out.commit();
  } catch (error) {
    await out.discard();
    throw error;
  }
}
