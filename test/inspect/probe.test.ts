import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FsType } from '../../src/inspect/fs/fs-driver.js';
import { type FsProbe, probeFilesystem } from '../../src/inspect/fs/probe.js';
import { LVM_CRC_SEED } from '../../src/inspect/fs/probe-lvm.js';
import { readPartitionTable } from '../../src/inspect/partitions/index.js';
import { bufferVolume, ReadCounter, type Volume, volumeOf } from '../../src/inspect/volume.js';
import { crc32Raw } from '../../src/util/crc32.js';
import { pseudoRandom } from '../helpers/disks.js';
import { withTempDir } from '../helpers/qemu.js';

function have(...tools: string[]): boolean {
  try {
    execFileSync('sh', ['-c', tools.map((t) => `command -v ${t}`).join(' && ')], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

/** Undoes blkid's \\xNN escaping of the *_ENC values (bytes, then UTF-8). */
function decodeEnc(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === 'x') {
      bytes.push(Number.parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * blkid -p (util-linux): the second oracle, low-level probing of a plain
 * file. The udev output keeps labels exact (\\xNN escapes in *_ENC).
 */
function blkid(path: string): Record<string, string> {
  let out = '';
  try {
    out = execFileSync('blkid', ['-p', '-o', 'udev', path], { encoding: 'utf8' });
  } catch (error) {
    // Exit status 2: nothing found.
    if ((error as { status?: number }).status !== 2) throw error;
  }
  const raw: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) raw[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const rec: Record<string, string> = {};
  if (raw.ID_FS_TYPE !== undefined) rec.TYPE = raw.ID_FS_TYPE;
  if (raw.ID_FS_UUID_ENC !== undefined) rec.UUID = decodeEnc(raw.ID_FS_UUID_ENC);
  if (raw.ID_FS_LABEL_ENC !== undefined) rec.LABEL = decodeEnc(raw.ID_FS_LABEL_ENC);
  if (raw.ID_FS_BLOCK_SIZE !== undefined) rec.BLOCK_SIZE = raw.ID_FS_BLOCK_SIZE;
  return rec;
}

const BLKID_TYPES: Record<string, FsType> = {
  ext2: 'ext2',
  ext3: 'ext3',
  ext4: 'ext4',
  xfs: 'xfs',
  btrfs: 'btrfs',
  vfat: 'vfat',
  ntfs: 'ntfs',
  swap: 'swap',
  LVM2_member: 'lvm2',
  crypto_LUKS: 'luks',
  iso9660: 'iso9660',
};

async function probeFile(
  path: string,
): Promise<{ probe: FsProbe | null; bytes: number; size: number }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const counter = new ReadCounter();
    const image = {
      virtualSize: size,
      read: async (offset: number, length: number) => {
        const b = Buffer.alloc(length);
        await fh.read(b, 0, length, offset);
        return b;
      },
    };
    return {
      probe: await probeFilesystem(volumeOf(image, 0, size, counter)),
      bytes: counter.bytes,
      size,
    };
  } finally {
    await fh.close();
  }
}

async function sparse(path: string, size: number): Promise<string> {
  await writeFile(path, '');
  await truncate(path, size);
  return path;
}

/** Probes `img` and checks type, UUID, label against what it was made with and against blkid. */
async function check(
  img: string,
  expected: {
    type: FsType;
    uuid?: string | null;
    label?: string | null;
    size?: number | null;
    version?: string;
  },
): Promise<FsProbe> {
  const { probe, bytes, size } = await probeFile(img);
  assert.ok(probe !== null, 'no filesystem found');
  assert.equal(probe.type, expected.type);
  if (expected.uuid !== undefined) assert.equal(probe.uuid, expected.uuid);
  if (expected.label !== undefined) assert.equal(probe.label, expected.label);
  if (expected.size !== undefined) assert.equal(probe.size, expected.size);
  if (expected.version !== undefined) assert.equal(probe.version, expected.version);
  const b = blkid(img);
  assert.equal(BLKID_TYPES[b.TYPE ?? ''], probe.type, `blkid says ${b.TYPE}`);
  assert.equal(probe.uuid, b.UUID ?? null, 'UUID per blkid');
  assert.equal(probe.label, b.LABEL ?? null, 'label per blkid');
  if (b.BLOCK_SIZE !== undefined)
    assert.equal(probe.blockSize, Number(b.BLOCK_SIZE), 'block size per blkid');
  if (probe.size !== null)
    assert.ok(probe.size > 0 && probe.size <= size, `size ${probe.size} of a ${size}-byte volume`);
  assert.ok(bytes <= 16 * 1024, `read ${bytes} bytes`);
  return probe;
}

const U1 = '0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9';

describe('filesystem probes against mkfs tools and blkid', () => {
  for (const [t, extra] of [
    ['ext2', []],
    ['ext3', []],
    ['ext4', []],
    ['ext4', ['-O', '^has_journal']],
    ['ext4', ['-O', '64bit,metadata_csum', '-b', '1024']],
  ] as const) {
    it(`${t} ${extra.join(' ')} (mke2fs)`, {
      skip: have('mke2fs') ? false : 'mke2fs (e2fsprogs) not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        const img = await sparse(join(dir, 'e.img'), 8 * 1024 * 1024);
        execFileSync('mke2fs', ['-q', '-F', '-t', t, ...extra, '-U', U1, '-L', 'root-fs', img], {
          stdio: 'ignore',
        });
        const p = await check(img, { type: t, uuid: U1, label: 'root-fs', size: 8 * 1024 * 1024 });
        if (t === 'ext4') assert.ok(p.features?.includes('extent'));
        if (t === 'ext3') assert.ok(p.features?.includes('has_journal'));
      });
    });
  }

  for (const v4 of [false, true]) {
    it(`xfs ${v4 ? 'v4' : 'v5'} (mkfs.xfs)`, {
      skip: have('mkfs.xfs') ? false : 'mkfs.xfs (xfsprogs) not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        const img = await sparse(join(dir, 'x.img'), 320 * 1024 * 1024);
        const crc = v4 ? 'crc=0,finobt=0,' : '';
        execFileSync('mkfs.xfs', ['-q', '-f', '-m', `${crc}uuid=${U1}`, '-L', 'xroot', img], {
          stdio: 'ignore',
        });
        await check(img, {
          type: 'xfs',
          uuid: U1,
          label: 'xroot',
          size: 320 * 1024 * 1024,
          version: v4 ? '4' : '5',
        });
      });
    });
  }

  it('btrfs (mkfs.btrfs --mixed)', {
    skip: have('mkfs.btrfs') ? false : 'mkfs.btrfs (btrfs-progs) not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const img = await sparse(join(dir, 'b.img'), 16 * 1024 * 1024);
      execFileSync('mkfs.btrfs', ['-q', '--mixed', '-U', U1, '-L', 'butter', img], {
        stdio: 'ignore',
      });
      await check(img, { type: 'btrfs', uuid: U1, label: 'butter', size: 16 * 1024 * 1024 });
    });
  });

  for (const [bits, kib] of [
    [12, 4096],
    [16, 32 * 1024],
    [32, 64 * 1024],
  ] as const) {
    it(`vfat FAT${bits} (mkfs.vfat)`, {
      skip: have('mkfs.vfat') ? false : 'mkfs.vfat (dosfstools) not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        const img = join(dir, 'f.img');
        execFileSync(
          'mkfs.vfat',
          ['-C', '-F', String(bits), '-i', '1234ABCD', '-n', 'EFI', img, String(kib)],
          { stdio: 'ignore' },
        );
        await check(img, {
          type: 'vfat',
          uuid: '1234-ABCD',
          label: 'EFI',
          size: kib * 1024,
          version: `FAT${bits}`,
        });
      });
    });
  }

  it('vfat without a label (mkfs.vfat writes NO NAME)', {
    skip: have('mkfs.vfat') ? false : 'mkfs.vfat not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'f.img');
      execFileSync('mkfs.vfat', ['-C', '-i', '0000BEEF', img, '2048'], { stdio: 'ignore' });
      await check(img, { type: 'vfat', uuid: '0000-BEEF', label: null });
    });
  });

  it('ntfs (mkntfs), label read from $Volume', {
    skip: have('mkntfs') ? false : 'mkntfs (ntfs-3g) not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const img = await sparse(join(dir, 'n.img'), 16 * 1024 * 1024);
      execFileSync('mkntfs', ['-q', '-F', '-f', '-L', 'Windows ✓', img], { stdio: 'ignore' });
      const p = await check(img, { type: 'ntfs', label: 'Windows ✓' });
      assert.match(p.uuid ?? '', /^[0-9A-F]{16}$/);
      // mkntfs keeps the last sector for the backup boot sector.
      assert.equal(p.size, 16 * 1024 * 1024 - 512);
    });
  });

  it('swap (mkswap)', {
    skip: have('mkswap') ? false : 'mkswap (util-linux) not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const img = await sparse(join(dir, 's.img'), 8 * 1024 * 1024);
      execFileSync('mkswap', ['-U', U1, '-L', 'swappy', img], { stdio: 'ignore' });
      await check(img, {
        type: 'swap',
        uuid: U1,
        label: 'swappy',
        size: 8 * 1024 * 1024,
        version: '1',
      });
    });
  });

  for (const v of ['luks1', 'luks2'] as const) {
    it(`${v} (cryptsetup luksFormat on a plain file)`, {
      skip: have('cryptsetup') ? false : 'cryptsetup (cryptsetup-bin) not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        const img = await sparse(join(dir, 'l.img'), 20 * 1024 * 1024);
        await writeFile(join(dir, 'key'), 'secret');
        execFileSync(
          'cryptsetup',
          [
            'luksFormat',
            '-q',
            '--type',
            v,
            '--pbkdf-force-iterations',
            '1000',
            ...(v === 'luks2' ? ['--pbkdf', 'pbkdf2', '--label', 'vault'] : []),
            '--uuid',
            U1,
            '--key-file',
            join(dir, 'key'),
            img,
          ],
          { stdio: 'ignore' },
        );
        await check(img, {
          type: 'luks',
          uuid: U1,
          label: v === 'luks2' ? 'vault' : null,
          size: null,
          version: v.slice(4),
        });
      });
    });
  }

  for (const joliet of [false, true]) {
    it(`iso9660${joliet ? ' with Joliet' : ''} (xorriso -as mkisofs)`, {
      skip: have('xorriso') ? false : 'xorriso not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        await mkdir(join(dir, 'content'));
        await writeFile(join(dir, 'content', 'readme.txt'), 'hello');
        const img = join(dir, 'c.iso');
        execFileSync(
          'xorriso',
          [
            '-as',
            'mkisofs',
            '-quiet',
            ...(joliet ? ['-J'] : []),
            '-V',
            'DEBIAN_12',
            '-o',
            img,
            join(dir, 'content'),
          ],
          {
            stdio: 'ignore',
          },
        );
        const p = await check(img, {
          type: 'iso9660',
          label: 'DEBIAN_12',
          size: (await readFile(img)).length,
        });
        assert.match(p.uuid ?? '', /^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\d\d$/);
      });
    });
  }

  it('lvm2 PV label built from the on-disk format (pvcreate needs a block device)', async () => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'pv.img');
      await writeFile(img, lvmPv('Xy7kLm-0123-4567-89ab-cdef-ghij-KLmnop', 8 * 1024 * 1024, 1));
      await check(img, {
        type: 'lvm2',
        uuid: 'Xy7kLm-0123-4567-89ab-cdef-ghij-KLmnop',
        label: null,
        size: 8 * 1024 * 1024,
      });
    });
  });

  it('finds nothing in zeros, random bytes or a tiny volume', async () => {
    assert.equal(await probeFilesystem(bufferVolume(Buffer.alloc(1024 * 1024))), null);
    assert.equal(await probeFilesystem(bufferVolume(pseudoRandom(256 * 1024, 'probe'))), null);
    assert.equal(await probeFilesystem(bufferVolume(Buffer.alloc(0))), null);
    assert.equal(await probeFilesystem(bufferVolume(Buffer.alloc(100, 0xff))), null);
  });

  it('rejects an LVM label whose CRC is wrong, as blkid does', async () => {
    const pv = lvmPv('Xy7kLm-0123-4567-89ab-cdef-ghij-KLmnop', 1024 * 1024, 1);
    pv.writeUInt8(pv.readUInt8(512 + 40) ^ 1, 512 + 40);
    assert.equal(await probeFilesystem(bufferVolume(pv)), null);
  });
});

/**
 * An LVM2 physical volume label: "LABELONE" in sector `sector`, the label
 * CRC (LVM's seed, no final inversion) over bytes 20-511, then the PV
 * header: the UUID without dashes, the device size, one data area and one
 * metadata area, each list ended by a zero entry.
 */
function lvmPv(uuid: string, size: number, sector: number): Buffer {
  const buf = Buffer.alloc(Math.min(size, 1024 * 1024));
  const l = buf.subarray(sector * 512, sector * 512 + 512);
  l.write('LABELONE', 0, 'latin1');
  l.writeBigUInt64LE(BigInt(sector), 8);
  l.writeUInt32LE(32, 20);
  l.write('LVM2 001', 24, 'latin1');
  l.write(uuid.replaceAll('-', ''), 32, 'latin1');
  l.writeBigUInt64LE(BigInt(size), 64);
  l.writeBigUInt64LE(1024n * 1024n, 72); // data area offset, size 0 = to the end
  l.writeBigUInt64LE(4096n, 104); // metadata area after the empty terminator
  l.writeBigUInt64LE(1024n * 1024n - 4096n, 112);
  l.writeUInt32LE(crc32Raw(l.subarray(20), LVM_CRC_SEED), 16);
  if (size > buf.length) {
    const full = Buffer.alloc(size);
    buf.copy(full);
    return full;
  }
  return buf;
}

describe('probes of partitions found by readPartitionTable', {
  skip: have('sgdisk', 'mkfs.vfat', 'mke2fs', 'mkswap')
    ? false
    : 'sgdisk, mkfs.vfat, mke2fs or mkswap missing',
}, () => {
  it('names the EFI system, root and swap filesystems of a GPT disk', async () => {
    await withTempDir(async (dir) => {
      const disk = await sparse(join(dir, 'disk.img'), 64 * 1024 * 1024);
      execFileSync(
        'sgdisk',
        [
          '-n',
          '1:2048:+20M',
          '-t',
          '1:ef00',
          '-n',
          '2:0:+30M',
          '-t',
          '2:8300',
          '-n',
          '3:0:0',
          '-t',
          '3:8200',
          disk,
        ],
        {
          stdio: 'ignore',
        },
      );
      const fh = await open(disk, 'r+');
      try {
        const { size } = await fh.stat();
        const image = {
          virtualSize: size,
          read: async (o: number, l: number) => {
            const b = Buffer.alloc(l);
            await fh.read(b, 0, l, o);
            return b;
          },
        };
        const table = await readPartitionTable(volumeOf(image, 0, size));
        const [esp, root, swap] = table.partitions;
        assert.ok(esp !== undefined && root !== undefined && swap !== undefined);
        const put = async (
          p: { start: number; size: number },
          make: (f: string) => void,
        ): Promise<void> => {
          const f = await sparse(join(dir, 'part.img'), p.size);
          make(f);
          await fh.write(await readFile(f), 0, p.size, p.start);
        };
        await put(esp, (f) =>
          execFileSync('mkfs.vfat', ['-F', '32', '-i', 'ABCD0123', '-n', 'ESP', f], {
            stdio: 'ignore',
          }),
        );
        await put(root, (f) =>
          execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-U', U1, '-L', 'root', f], {
            stdio: 'ignore',
          }),
        );
        await put(swap, (f) => execFileSync('mkswap', ['-L', 'sw', f], { stdio: 'ignore' }));
        const probes: (FsProbe | null)[] = [];
        for (const p of table.partitions) {
          const v: Volume = volumeOf(image, p.start, p.size);
          probes.push(await probeFilesystem(v));
        }
        assert.deepEqual(
          probes.map((p) => [p?.type, p?.label]),
          [
            ['vfat', 'ESP'],
            ['ext4', 'root'],
            ['swap', 'sw'],
          ],
        );
        assert.equal(probes[0]?.uuid, 'ABCD-0123');
        assert.equal(probes[1]?.uuid, U1);
      } finally {
        await fh.close();
      }
    });
  });
});
