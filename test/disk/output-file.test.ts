import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BOUNCE_BYTES, DIRECT_MIN } from '../../src/disk/direct-io.js';
import { OutputFile } from '../../src/disk/output-file.js';
import { nativeBinding } from '../../src/disk/seek-data.js';
import { withTempDir } from '../helpers/qemu.js';

const O_DIRECT = 0o40000;

/** Whether this process holds `path` open with O_DIRECT (from /proc/self/fdinfo). */
function openDirect(path: string): boolean {
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const flags = /^flags:\s+([0-7]+)/m.exec(info);
    if (flags !== null && (Number.parseInt(flags[1]!, 8) & O_DIRECT) !== 0) return true;
  }
  return false;
}

/**
 * A mix of the writes image writers make, applied both to the file and to
 * an in-memory model: large aligned ones (direct), a large one with an
 * unaligned tail, one longer than the bounce buffer, unaligned and small
 * ones, a gathered write, and overwrites of bytes an earlier write put there.
 */
async function exercise(out: OutputFile, model: Buffer): Promise<void> {
  const put = async (at: number, data: Buffer): Promise<void> => {
    await out.write(data, at);
    data.copy(model, at);
  };
  await put(0, randomBytes(2 * 1024 * 1024));
  await put(3 * 1024 * 1024, randomBytes(DIRECT_MIN + 1234));
  await put(5 * 1024 * 1024 + 512, randomBytes(BOUNCE_BYTES + 3 * 4096));
  await put(17, randomBytes(300));
  await put(4096 * 3, randomBytes(4096));
  const parts = [randomBytes(100_000), randomBytes(7), randomBytes(200_000)];
  await out.writev(parts, 12 * 1024 * 1024);
  Buffer.concat(parts).copy(model, 12 * 1024 * 1024);
  // Gathered and longer than the bounce buffer: a piece ends inside the second buffer.
  const long = [
    randomBytes(2 * 1024 * 1024 + 100),
    randomBytes(3 * 1024 * 1024),
    randomBytes(3996),
  ];
  await out.writev(long, 14 * 1024 * 1024);
  Buffer.concat(long).copy(model, 14 * 1024 * 1024);
  // Buffered bytes inside a directly written range, then a direct write across buffered ones.
  await put(1024 * 1024 + 5, randomBytes(10));
  await put(3 * 1024 * 1024 + DIRECT_MIN, randomBytes(DIRECT_MIN * 2));
}

describe('OutputFile', () => {
  for (const mode of ['direct', 'buffered', 'direct, turned off by FERRY_NO_DIRECT_IO'] as const) {
    it(`writes every byte where it belongs, ${mode}`, async () => {
      await withTempDir(async (dir) => {
        const previous = process.env.FERRY_NO_DIRECT_IO;
        if (mode.endsWith('FERRY_NO_DIRECT_IO')) process.env.FERRY_NO_DIRECT_IO = '1';
        else delete process.env.FERRY_NO_DIRECT_IO;
        const path = join(dir, 'out.img');
        const model = Buffer.alloc(20 * 1024 * 1024);
        try {
          const out = await OutputFile.create(path, { directWrites: mode !== 'buffered' });
          assert.equal(out.direct, mode === 'direct');
          // The temporary file sits on the test's file system (ext4 or XFS here), which has O_DIRECT.
          assert.equal(openDirect(out.tempPath), mode === 'direct');
          await exercise(out, model);
          await out.truncate(model.length);
          await out.commit();
        } finally {
          if (previous === undefined) delete process.env.FERRY_NO_DIRECT_IO;
          else process.env.FERRY_NO_DIRECT_IO = previous;
        }
        const got = await readFile(path);
        assert.equal(got.length, model.length);
        assert.ok(got.equals(model), 'file bytes differ from the writes');
      });
    });
  }

  it('reads back what direct writes put there before the commit', async () => {
    await withTempDir(async (dir) => {
      const out = await OutputFile.create(join(dir, 'x.img'), { directWrites: true });
      assert.equal(out.direct, process.env.FERRY_NO_DIRECT_IO !== '1');
      const data = randomBytes(1024 * 1024);
      await out.write(data, 4096);
      assert.ok((await out.read(4096, data.length)).equals(data));
      await out.discard();
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  it('starts writeback of a buffered file without changing its bytes', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'wb.img');
      const out = await OutputFile.create(path);
      const data = randomBytes(3 * 1024 * 1024);
      await out.write(data, 8192);
      const started = await out.startWriteback();
      // Linux with the binding built (as `npm ci` does here): sync_file_range works on ext4/XFS.
      assert.equal(
        started,
        process.platform === 'linux' && nativeBinding()?.startWriteback !== undefined,
      );
      await out.write(data.subarray(0, 4096), 0);
      assert.equal(typeof (await out.startWriteback()), 'boolean');
      await out.commit();
      const got = await readFile(path);
      assert.ok(got.subarray(8192).equals(data));
      assert.ok(got.subarray(0, 4096).equals(data.subarray(0, 4096)));
    });
  });
});
