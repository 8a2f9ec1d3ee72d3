import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rawWriter } from '../../src/disk/formats/raw/index.js';
import { BufferSource, copyImage, openImageSource } from '../../src/disk/index.js';
import { WRITE_CHUNK } from '../../src/disk/limits.js';
import type { DiskWriter, WriteResult } from '../../src/disk/types.js';
import { WindowPool } from '../../src/disk/window-pool.js';
import { withTempDir } from '../helpers/qemu.js';

const tick = () => new Promise((r) => setImmediate(r));

/** Bytes that differ in every 4 KiB unit (none is all zeros). */
function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i + 4 <= length; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

/**
 * A writer that keeps each buffer and copies it only some ticks later, as a
 * slow disk would; `released` resolves once every copy so far is taken, or,
 * with `early`, at once (a broken writer).
 */
class SlowWriter implements DiskWriter {
  readonly format = 'raw' as const;
  readonly out: Buffer;
  readonly seen = new Set<ArrayBufferLike>();
  #pending: Promise<void> = Promise.resolve();
  readonly #early: boolean;

  constructor(size: number, early = false) {
    this.out = Buffer.alloc(size);
    this.#early = early;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.seen.add(data.buffer);
    this.#pending = this.#pending.then(async () => {
      for (let i = 0; i < 3; i++) await tick();
      data.copy(this.out, offset);
    });
  }

  released(): Promise<void> {
    return this.#early ? Promise.resolve() : this.#pending;
  }

  async finish(): Promise<WriteResult> {
    await this.#pending;
    return { fileSize: this.out.length, virtualSize: this.out.length };
  }

  async abort(): Promise<void> {
    await this.#pending;
  }
}

describe('window pool', () => {
  it('hands out at most its capacity and makes the next taker wait for a buffer given back', async () => {
    const pool = new WindowPool(1024, 2);
    const a = await pool.take();
    const b = await pool.take();
    assert.notEqual(a.buffer, b.buffer);
    let third: Buffer | undefined;
    const waiting = pool.take().then((buf) => {
      third = buf;
    });
    await tick();
    assert.equal(third, undefined, 'a third take waits while both buffers are out');
    assert.equal(pool.out, 2);
    pool.give(b);
    await waiting;
    assert.equal(third, b, 'the buffer given back goes to the waiter');
    pool.give(a);
    pool.give(third);
    assert.equal(pool.out, 0);
    assert.equal((await pool.take()).length, 1024);
  });
});

describe('copyImage with reused window buffers', () => {
  const size = 40 * WRITE_CHUNK + 12345;

  it('copies every byte through a slow writer while reusing a bounded set of buffers', async () => {
    const src = pattern(size, 7);
    const image = await openImageSource(new BufferSource(src));
    const writer = new SlowWriter(size);
    await copyImage(image, writer);
    assert.ok(writer.out.equals(src), 'the copy equals its source');
    assert.ok(writer.seen.size < 20, `${writer.seen.size} distinct buffers for 41 windows`);
  });

  it('is caught by a writer that lets go of buffers before it is done with them', async () => {
    // The check the test above relies on: reuse before release corrupts the copy.
    const src = pattern(size, 9);
    const image = await openImageSource(new BufferSource(src));
    const writer = new SlowWriter(size, true);
    await copyImage(image, writer);
    assert.ok(!writer.out.equals(src), 'an early release shows up as a wrong copy');
  });

  it('leaves the raw writer output intact when the caller reuses a buffer after released()', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'out.raw');
      const writer = await rawWriter.create(path, { virtualSize: 4 * WRITE_CHUNK });
      const buf = pattern(WRITE_CHUNK, 3);
      const expected = Buffer.alloc(4 * WRITE_CHUNK);
      for (let w = 0; w < 4; w++) {
        buf.writeUInt32LE(w + 1, 0);
        buf.copy(expected, w * WRITE_CHUNK);
        await writer.write(w * WRITE_CHUNK, buf);
        assert.ok(writer.released !== undefined, 'the raw writer says when it lets go');
        await writer.released();
      }
      await writer.finish();
      assert.ok((await readFile(path)).equals(expected));
    });
  });
});
