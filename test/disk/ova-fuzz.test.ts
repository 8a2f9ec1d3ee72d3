import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { buildTar, manifestFor, ovaEntries, resealTarHeader, testOvf } from '../corpus/ova.js';
import { writeRawDisk } from '../helpers/disks.js';
import { fuzzParser } from '../helpers/fuzz.js';
import { qemuImg, withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Tiny OVAs around a qemu-img streamOptimized VMDK, packed by GNU tar (with and without manifest). */
async function qemuSeeds(): Promise<Buffer[]> {
  return withTempDir(async (dir) => {
    const raw = join(dir, 'a.raw');
    await writeRawDisk(raw, 2 * MiB + 512, [
      { offset: 0, length: 8192, fill: 'random' },
      { offset: MiB + 4096, length: 4096, fill: 0x33 },
    ]);
    const vmdk = join(dir, 'disk1.vmdk');
    await qemuImg(
      'convert',
      '-f',
      'raw',
      '-O',
      'vmdk',
      '-o',
      'subformat=streamOptimized',
      raw,
      vmdk,
    );
    const disk = await readFile(vmdk);
    const ovf = Buffer.from(
      testOvf({
        files: [{ href: 'disk1.vmdk', size: disk.length }],
        capacity: String(2 * MiB + 512),
      }),
    );
    await writeFile(join(dir, 'vm.ovf'), ovf);
    await writeFile(
      join(dir, 'vm.mf'),
      manifestFor([
        ['vm.ovf', ovf],
        ['disk1.vmdk', disk],
      ]),
    );
    const seeds: Buffer[] = [];
    for (const [format, files] of [
      ['ustar', ['vm.ovf', 'disk1.vmdk', 'vm.mf']],
      ['pax', ['vm.ovf', 'disk1.vmdk']],
      ['ustar', ['vm.ovf', 'disk1.vmdk']],
    ] as const) {
      const out = join(dir, `${format}-${files.length}.ova`);
      await run('tar', [`--format=${format}`, '-cf', out, '-C', dir, ...files]);
      seeds.push(await readFile(out));
    }
    return seeds;
  });
}

/** Recomputes every header checksum it can find (so mutants get past the tar layer). */
function resealAll(buf: Buffer): void {
  let pos = 0;
  for (let n = 0; n < 64 && pos + 512 <= buf.length; n++) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) return;
    resealTarHeader(h);
    const size = Number.parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, ''), 8);
    if (!Number.isSafeInteger(size) || size < 0) return;
    pos += 512 + Math.ceil(size / 512) * 512;
  }
}

function hotRanges(seed: Buffer): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let pos = 0;
  while (pos + 512 <= seed.length && !seed.subarray(pos, pos + 512).every((b) => b === 0)) {
    const size = Number.parseInt(seed.toString('latin1', pos + 124, pos + 136), 8);
    ranges.push([pos, pos + 512]);
    // Member starts: OVF text, the VMDK header and descriptor, the manifest.
    ranges.push([pos + 512, pos + 512 + Math.min(size, 4096)]);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return ranges;
}

describe('ova fuzz', () => {
  it('survives mutated OVAs (tar, OVF, manifest, disk) with checksums as mutated', async () => {
    const seeds = [...(await qemuSeeds()), buildTar(ovaEntries())];
    const stats = await fuzzParser(seeds, { hotRanges: hotRanges(seeds[0]!) });
    assert.ok(stats.runs > 0);
  });

  it('survives mutated OVAs with tar checksums recomputed (reaching the OVF and disk parsers)', async () => {
    const seeds = (await qemuSeeds()).slice(1);
    const stats = await fuzzParser(seeds, {
      hotRanges: hotRanges(seeds[1]!),
      fixup: resealAll,
    });
    assert.ok(stats.runs > 0);
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });
});
