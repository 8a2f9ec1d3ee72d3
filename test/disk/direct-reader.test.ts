import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { DirectReader } from '../../src/disk/direct-reader.js';
import { FileSource } from '../../src/disk/file-source.js';
import { openBlockSource } from '../../src/publish/block-source.js';
import { withTempDir } from '../helpers/qemu.js';

const KiB = 1024;

describe('direct reads', () => {
  it('read aligned blocks past the page cache, byte for byte what a buffered read gives', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'image.raw');
      // Not a multiple of 4 KiB: the tail must go buffered.
      const data = randomBytes(3 * 512 * KiB + 1000);
      await writeFile(path, data);
      const direct = mock.method(DirectReader.prototype, 'readInto');
      const source = await FileSource.open(path, { directReads: true });
      try {
        // [offset, length, what each direct piece answered (served direct or not)]
        const cases: Array<[number, number, boolean[]]> = [
          [0, 512 * KiB, [true]],
          [512 * KiB, 512 * KiB, [true]],
          [4096, 64 * KiB, [true]],
          [1024 * KiB, 128 * KiB, [true]],
          // Longer than a bounce slot: in slot-sized pieces, a too-short last one buffered.
          [0, 1024 * KiB, [true, true]],
          [4096, 3 * 512 * KiB - 4096, [true, true, true]],
          [0, 512 * KiB + 8 * KiB, [true, false]],
          // Too short, unaligned, or running into the unaligned tail: buffered.
          [0, 4096, []],
          [100, 64 * KiB, []],
          [3 * 512 * KiB - 64 * KiB, 64 * KiB + 1000, []],
          [0, 3 * 512 * KiB + 1000, []],
        ];
        for (const [offset, length, pieces] of cases) {
          const before = direct.mock.callCount();
          const got = Buffer.alloc(length);
          await source.readInto(got, offset);
          assert.ok(got.equals(data.subarray(offset, offset + length)), `${offset}+${length}`);
          const calls = direct.mock.calls.slice(before);
          const served = await Promise.all(calls.map((c) => c.result));
          assert.deepEqual(served, pieces, `${offset}+${length} direct pieces`);
        }
        // More reads in flight than bounce slots: the rest go buffered, all correct.
        const many = Array.from({ length: 40 }, (_, i) => (i % 3) * 512 * KiB);
        const bufs = await Promise.all(
          many.map(async (offset) => {
            const b = Buffer.alloc(512 * KiB);
            await source.readInto(b, offset);
            return [offset, b] as const;
          }),
        );
        for (const [offset, b] of bufs) {
          assert.ok(b.equals(data.subarray(offset, offset + 512 * KiB)));
        }
      } finally {
        direct.mock.restore();
        await source.close();
      }
    });
  });

  it('are not used unless asked for, nor with FERRY_NO_DIRECT_IO=1', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'image.raw');
      await writeFile(path, randomBytes(512 * KiB));
      const direct = mock.method(DirectReader.prototype, 'readInto');
      const saved = process.env.FERRY_NO_DIRECT_IO;
      try {
        const plain = await FileSource.open(path);
        await plain.readInto(Buffer.alloc(512 * KiB), 0);
        await plain.close();
        process.env.FERRY_NO_DIRECT_IO = '1';
        assert.equal(await DirectReader.open(path), null);
        const off = await FileSource.open(path, { directReads: true });
        await off.readInto(Buffer.alloc(512 * KiB), 0);
        await off.close();
        assert.equal(direct.mock.callCount(), 0);
      } finally {
        if (saved === undefined) delete process.env.FERRY_NO_DIRECT_IO;
        else process.env.FERRY_NO_DIRECT_IO = saved;
        direct.mock.restore();
      }
    });
  });

  it('serve a publish block source only when asked (a render), not a user image', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'image.raw');
      const data = randomBytes(2 * 512 * KiB);
      await writeFile(path, data);
      const direct = mock.method(DirectReader.prototype, 'readInto');
      try {
        for (const directReads of [true, false]) {
          const before = direct.mock.callCount();
          const source = await openBlockSource(path, { directReads });
          try {
            const got = Buffer.alloc(512 * KiB);
            await source.readBlock(1, got);
            assert.ok(got.equals(data.subarray(512 * KiB)));
          } finally {
            await source.close();
          }
          const used = direct.mock.callCount() - before;
          if (directReads) assert.ok(used >= 1, 'read direct');
          else assert.equal(used, 0, 'read buffered');
        }
      } finally {
        direct.mock.restore();
      }
    });
  });
});
