import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { DirectReader } from '../../src/disk/direct-reader.js';
import {
  BufferSource,
  compareImages,
  convertImage,
  detectFormat,
  openImage,
  openImageSource,
  WRITABLE_FORMATS,
} from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { qemuCompare, withTempDir } from '../helpers/qemu.js';

/** qemu-img's name for each format ferry writes that qemu-img reads (OVA it does not). */
const QEMU_FORMAT: Record<string, string | undefined> = {
  raw: 'raw',
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vhd: 'vpc',
  vhdx: 'vhdx',
};

describe('convert', () => {
  it('writes every format the same, direct (the default) or buffered', async (t) => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      const reads = mock.method(DirectReader.prototype, 'readInto');
      const servedDirect = async (): Promise<number> => {
        const answers = await Promise.all(reads.mock.calls.map((c) => c.result));
        reads.mock.resetCalls();
        return answers.filter((a) => a === true).length;
      };
      const canDirect = process.env.FERRY_NO_DIRECT_IO !== '1';
      t.after(() => reads.mock.restore());
      for (const to of WRITABLE_FORMATS) {
        const direct = join(dir, `direct.${to}`);
        const buffered = join(dir, `buffered.${to}`);
        await convertImage(a, direct, { to });
        if (canDirect) assert.ok((await servedDirect()) > 0, `${to}: input read direct`);
        await convertImage(a, buffered, { to, directWrites: false, directReads: false });
        assert.equal(await servedDirect(), 0, `${to}: input read buffered`);
        for (const out of [direct, buffered]) {
          const src = await openImage(a);
          const img = await openImage(out);
          try {
            const r = await compareImages(src, img);
            assert.equal(r.identical, true, `${out}: differs at ${String(r.firstDifference)}`);
          } finally {
            await img.close();
            await src.close();
          }
          const qf = QEMU_FORMAT[to];
          if (qf !== undefined) {
            assert.equal((await qemuCompare(a, out, 'raw', qf)).identical, true, out);
          }
        }
        // VMDK (CID), VHD and VHDX (ids, timestamps) and OVA carry per-file identifiers.
        if (to === 'raw' || to === 'qcow2') {
          assert.ok(
            (await readFile(direct)).equals(await readFile(buffered)),
            `${to}: bytes differ`,
          );
        }
        // And back to raw, the converted image read direct where it can be.
        const back = join(dir, `back-from-${to}.raw`);
        await convertImage(direct, back, { to: 'raw' });
        assert.equal((await qemuCompare(a, back, 'raw', 'raw')).identical, true, back);
      }
    });
  });

  it('an aborted conversion leaves no output and no temporary file', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      const controller = new AbortController();
      await assert.rejects(
        convertImage(a, join(dir, 'b.raw'), {
          to: 'raw',
          signal: controller.signal,
          onEvent: (e) => {
            if (e.type === 'progress') controller.abort();
          },
        }),
        (e) => isFerryError(e, 'FERRY_ABORTED'),
      );
      assert.deepEqual(await readdir(dir), ['a.img']);
    });
  });

  it('refuses to overwrite unless asked, and never writes onto its input', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      const b = join(dir, 'b.raw');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      await writeFile(b, 'keep me');
      await assert.rejects(convertImage(a, b, { to: 'raw' }), (e) =>
        isFerryError(e, 'FERRY_DESTINATION_EXISTS'),
      );
      assert.equal((await stat(b)).size, 7);
      await assert.rejects(convertImage(a, a, { to: 'raw', overwrite: true }), (e) =>
        isFerryError(e, 'FERRY_USAGE'),
      );
      assert.equal((await stat(a)).size, MIXED_SIZE);
      const r = await convertImage(a, b, { to: 'raw', overwrite: true });
      assert.equal(r.virtualSize, MIXED_SIZE);
      assert.equal((await stat(b)).size, MIXED_SIZE);
    });
  });

  it('emits progress events ending at the virtual size', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      const events: string[] = [];
      let last = 0;
      await convertImage(a, join(dir, 'b.raw'), {
        to: 'raw',
        onEvent: (e) => {
          events.push(e.type);
          if (e.type === 'progress') {
            assert.ok(e.done >= last);
            last = e.done;
          }
        },
      });
      assert.equal(events[0], 'convert-start');
      assert.equal(events.at(-1), 'convert-done');
      assert.equal(last, MIXED_SIZE);
    });
  });
});

describe('detection', () => {
  it('detects by bytes, not by name', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'looks-like.qcow2');
      await writeRawDisk(p, 1024 * 1024, [{ offset: 0, length: 4096, fill: 'random' }]);
      const img = await openImage(p);
      assert.equal(img.format, 'raw');
      await img.close();
    });
  });

  it('refuses bytes that match two formats (a qcow2 header inside a fixed VHD)', async () => {
    const buf = Buffer.alloc(1024 * 1024 + 512);
    buf.writeUInt32BE(0x514649fb, 0);
    buf.write('conectix', buf.length - 512, 'latin1');
    const src = new BufferSource(buf, 'ambiguous');
    assert.deepEqual((await detectFormat(src)).matches, ['qcow2', 'vhd']);
    await assert.rejects(openImageSource(src), (e) => isFerryError(e, 'FERRY_FORMAT_MISMATCH'));
  });

  it('refuses a declared format that the bytes contradict', async () => {
    const buf = Buffer.alloc(64 * 1024);
    const src = new BufferSource(buf, 'zeros');
    await assert.rejects(openImageSource(src, { format: 'qcow2' }), (e) =>
      isFerryError(e, 'FERRY_FORMAT_MISMATCH'),
    );
  });
});
