import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { writeThrough } from '../../src/disk/direct-io.js';

/**
 * A stand-in for a buffered FileHandle whose writes and writevs take at most
 * `cap` bytes per call (as a write interrupted by a signal, or a full pipe,
 * may), applied to an in-memory file.
 */
function shortWriter(
  size: number,
  cap: number,
): { handle: FileHandle; file: Buffer; calls: number[] } {
  const file = Buffer.alloc(size);
  const calls: number[] = [];
  const take = (src: Buffer, position: number): number => {
    const n = Math.min(cap, src.length);
    src.copy(file, position, 0, n);
    calls.push(n);
    return n;
  };
  const handle = {
    write: async (b: Buffer, offset: number, length: number, position: number) => ({
      bytesWritten: take(b.subarray(offset, offset + length), position),
      buffer: b,
    }),
    writev: async (list: Buffer[], position: number) => ({
      bytesWritten: take(Buffer.concat(list), position),
      buffers: list,
    }),
  } as unknown as FileHandle;
  return { handle, file, calls };
}

describe('writeThrough', () => {
  it('continues short buffered writes until every byte is written', async () => {
    for (const cap of [1, 777, 4096, 100_000]) {
      const { handle, file, calls } = shortWriter(1 << 20, cap);
      const parts = [randomBytes(5000), randomBytes(3), randomBytes(20_000), randomBytes(0)];
      const direct = await writeThrough(handle, null, parts, 1000);
      assert.equal(direct, 0);
      assert.deepEqual(file.subarray(1000, 1000 + 25_003), Buffer.concat(parts), `cap ${cap}`);
      assert.ok(calls.length >= Math.ceil(25_003 / cap), `cap ${cap}: ${calls.length} calls`);
      // Nothing was written outside the range.
      assert.equal(
        file.subarray(0, 1000).some((b) => b !== 0),
        false,
      );
      assert.equal(
        file.subarray(1000 + 25_003).some((b) => b !== 0),
        false,
      );
    }
  });

  it('writes one buffer fully, short writes included', async () => {
    const { handle, file } = shortWriter(64 * 1024, 1000);
    const data = randomBytes(9999);
    assert.equal(await writeThrough(handle, null, data, 17), 0);
    assert.deepEqual(file.subarray(17, 17 + 9999), data);
  });

  it('fails with EIO instead of spinning when a write makes no progress', async () => {
    const { handle } = shortWriter(4096, 0);
    await assert.rejects(writeThrough(handle, null, randomBytes(100), 0), { code: 'EIO' });
  });
});
