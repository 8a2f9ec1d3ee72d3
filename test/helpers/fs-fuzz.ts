import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import type { FsDriver } from '../../src/inspect/fs/fs-driver.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { bufferVolume, type Volume } from '../../src/inspect/volume.js';
import { FUZZ_SECONDS } from './fuzz.js';

/** Lists a tree recursively and reads every file, with caps; throws what the reader throws. */
export async function walkTree(fs: FsTree, maxNodes = 2000): Promise<number> {
  let nodes = 0;
  const queue = ['/'];
  while (queue.length > 0 && nodes < maxNodes) {
    const dir = queue.shift()!;
    for (const e of (await fs.readDir(dir, 500)) ?? []) {
      if (++nodes > maxNodes) break;
      const path = `${dir === '/' ? '' : dir}/${e.name}`;
      const st = await fs.lstat(path);
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
  seed: Buffer,
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
        const buf = Buffer.from(seed);
        for (const m of muts) {
          const range = hotRanges[m.r % hotRanges.length] ?? [0, buf.length];
          const at = range[0] + (m.at % Math.max(1, range[1] - range[0]));
          if (m.wide === 0 || at + 4 > buf.length) buf[at] = m.v;
          else if (m.wide === 1) buf.writeUInt16LE(m.h & 0xffff, at);
          else buf.writeUInt32LE(m.h >>> 0, at);
        }
        stats.runs++;
        try {
          const d = await open(bufferVolume(buf));
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
