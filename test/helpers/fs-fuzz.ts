import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import type { FsDriver } from '../../src/inspect/fs/fs-driver.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { bufferVolume, type Volume } from '../../src/inspect/volume.js';
import { FUZZ_SECONDS } from './fuzz.js';

/** Lists a tree recursively, reads every file and every node's extended attributes, with caps; throws what the reader throws. */
export async function walkTree(fs: FsTree, maxNodes = 2000): Promise<number> {
  let nodes = 0;
  const queue = ['/'];
  while (queue.length > 0 && nodes < maxNodes) {
    const dir = queue.shift()!;
    for (const e of (await fs.readDir(dir, 500)) ?? []) {
      if (++nodes > maxNodes) break;
      const path = `${dir === '/' ? '' : dir}/${e.name}`;
      const st = await fs.lstat(path);
      await fs.readXattrs(path);
      if (st?.kind === 'dir' && path.split('/').length < 12) queue.push(path);
      else if (st?.kind === 'file') await fs.readFile(path, 1024 * 1024);
      else if (st?.kind === 'symlink') await fs.readLink(path);
    }
  }
  return nodes;
}

/**
 * Mutation fuzzing of a filesystem reader: byte and field mutations of a
 * valid image (focused on `hotRanges`), then open, walk and read everything.
 * Only FerryErrors may escape.
 */
export async function fuzzFilesystem(
  seed: Buffer | Volume,
  open: (v: Volume) => Promise<FsDriver<never> | FsDriver | null>,
  hotRanges: readonly (readonly [number, number])[],
  seconds = FUZZ_SECONDS,
): Promise<{ runs: number; refused: number }> {
  const stats = { runs: 0, refused: 0 };
  const hostile = [0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff];
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          r: fc.nat(),
          at: fc.nat(),
          v: fc.nat({ max: 255 }),
          wide: fc.constantFrom(0, 1, 2),
          h: fc.constantFrom(...hostile),
        }),
        {
          minLength: 1,
          maxLength: 12,
        },
      ),
      async (muts) => {
        // Mutations are byte patches laid over the seed, so large seeds are not copied.
        const size = Buffer.isBuffer(seed) ? seed.length : seed.size;
        const patches = new Map<number, number>();
        for (const m of muts) {
          const range = hotRanges[m.r % hotRanges.length] ?? [0, size];
          const at = Math.min(size - 4, range[0] + (m.at % Math.max(1, range[1] - range[0])));
          const bytes = Buffer.alloc(4);
          if (m.wide === 2) bytes.writeUInt32BE(m.h >>> 0);
          else if (m.wide === 1) bytes.writeUInt16BE(m.h & 0xffff, 2);
          if (m.wide === 0) patches.set(at, m.v);
          else
            for (let k = m.wide === 1 ? 2 : 0; k < 4; k++)
              patches.set(at + k - (m.wide === 1 ? 2 : 0), bytes[k]!);
        }
        const base = Buffer.isBuffer(seed) ? bufferVolume(seed) : seed;
        const volume: Volume = {
          start: 0,
          size,
          read: async (offset, length) => {
            const b = await base.read(offset, length);
            for (const [at, v] of patches)
              if (at >= offset && at < offset + length) b[at - offset] = v;
            return b;
          },
        };
        stats.runs++;
        try {
          const d = await open(volume);
          if (d !== null) await walkTree(new FsTree(d as FsDriver));
        } catch (error) {
          if (!isFerryError(error)) throw error;
          stats.refused++;
        }
      },
    ),
    { interruptAfterTimeLimit: seconds * 1000, numRuns: 1_000_000 },
  );
  return stats;
}
