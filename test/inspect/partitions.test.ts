import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  detectBootCode,
  type PartitionTable,
  readPartitionTable,
} from '../../src/inspect/partitions/index.js';
import { bufferVolume, ReadCounter, type Volume, volumeOf } from '../../src/inspect/volume.js';
import { crc32 } from '../../src/util/crc32.js';
import { smallGpt } from '../corpus/partitions.js';
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
const haveSfdisk = have('sfdisk', 'partx');
const haveSgdisk = have('sgdisk', 'sfdisk', 'partx');

async function withFileVolume<T>(
  path: string,
  fn: (v: Volume, counter: ReadCounter) => Promise<T>,
): Promise<T> {
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
    return await fn(volumeOf(image, 0, size, counter), counter);
  } finally {
    await fh.close();
  }
}

interface PartxRow {
  index: number;
  start: number;
  sectors: number;
  type: string;
  uuid: string;
  name: string;
  flags: bigint;
}

/** Undoes partx's \xNN escaping of non-ASCII and special bytes. */
function unescapePartx(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === 'x') {
      bytes.push(Number.parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** partx (util-linux) reads partition tables from plain files: the oracle. */
function partx(path: string): PartxRow[] {
  const out = execFileSync(
    'partx',
    ['-g', '-P', '-o', 'NR,START,SECTORS,TYPE,UUID,NAME,FLAGS', path],
    {
      encoding: 'utf8',
    },
  );
  return out
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const f = Object.fromEntries(
        [...line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      );
      return {
        index: Number(f.NR),
        start: Number(f.START),
        sectors: Number(f.SECTORS),
        type: f.TYPE ?? '',
        uuid: f.UUID ?? '',
        name: unescapePartx(f.NAME ?? ''),
        flags: BigInt(f.FLAGS || '0'),
      };
    });
}

function sfdiskJson(path: string): { label: string; id: string; partitions: unknown[] } {
  return (
    JSON.parse(execFileSync('sfdisk', ['--json', path], { encoding: 'utf8' })) as {
      partitiontable: { label: string; id: string; partitions: unknown[] };
    }
  ).partitiontable;
}

/** The table ferry read agrees with partx on every partition. */
function assertMatchesPartx(table: PartitionTable, rows: PartxRow[], ss = 512): void {
  assert.deepEqual(
    table.partitions.map((p) => p.index),
    rows.map((r) => r.index),
  );
  for (const r of rows) {
    const p = table.partitions.find((x) => x.index === r.index)!;
    assert.equal(p.start, r.start * ss, `start of ${r.index}`);
    assert.equal(p.size, r.sectors * ss, `size of ${r.index}`);
    assert.equal(p.typeId, r.type, `type of ${r.index}`);
    assert.equal(p.uuid, r.uuid, `uuid of ${r.index}`);
    if (table.type === 'gpt') {
      assert.equal(p.name, r.name, `name of ${r.index}`);
      assert.equal(BigInt(p.attributes ?? '0'), r.flags, `attributes of ${r.index}`);
      assert.equal(p.bootable, (r.flags & 4n) !== 0n);
    } else {
      assert.equal(p.bootable, r.flags === 0x80n, `boot flag of ${r.index}`);
    }
  }
}

describe('MBR partition tables made by sfdisk', {
  skip: haveSfdisk ? false : 'sfdisk/partx (fdisk, util-linux) not installed',
}, () => {
  it('reads primaries, an extended chain of logical partitions and the boot flag', async () => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'mbr.img');
      await writeFile(img, '');
      await truncate(img, 64 * 1024 * 1024);
      const script = [
        'label: dos',
        'label-id: 0x1234abcd',
        'start=2048, size=10M, type=83, bootable',
        'start=22528, size=40M, type=5',
        'size=5M, type=82',
        'size=8M, type=83',
        'size=4M, type=8e',
        'size=3M, type=83',
        ',,c',
      ].join('\n');
      execFileSync('sfdisk', ['-q', img], { input: script });
      await withFileVolume(img, async (v, counter) => {
        const t = await readPartitionTable(v);
        assert.equal(t.type, 'mbr');
        assert.equal(t.diskSignature, sfdiskJson(img).id);
        assert.deepEqual(t.findings, []);
        assertMatchesPartx(t, partx(img));
        assert.deepEqual(
          t.partitions.map((p) => [p.index, p.kind, p.typeName]),
          [
            [1, 'primary', 'linux'],
            [2, 'extended', 'extended'],
            [3, 'primary', 'linux-swap'],
            [4, 'primary', 'linux'],
            [5, 'logical', 'linux-lvm'],
            [6, 'logical', 'linux'],
            [7, 'logical', 'fat32-lba'],
          ],
        );
        assert.equal(t.partitions[0]!.type, '0x83');
        assert.ok(counter.bytes < 64 * 1024, `read ${counter.bytes} bytes`);
      });
    });
  });

  for (const extType of ['f', '85']) {
    it(`follows an extended partition of type 0x${extType}`, async () => {
      await withTempDir(async (dir) => {
        const img = join(dir, 'mbr.img');
        await writeFile(img, '');
        await truncate(img, 16 * 1024 * 1024);
        execFileSync('sfdisk', ['-q', img], {
          input: `label: dos\nstart=2048, size=4M, type=83\nstart=10240, type=${extType}\nsize=1M, type=83\n,,83\n`,
        });
        await withFileVolume(img, async (v) => {
          const t = await readPartitionTable(v);
          assertMatchesPartx(t, partx(img));
          assert.deepEqual(
            t.partitions.filter((p) => p.kind === 'logical').map((p) => p.index),
            [5, 6],
          );
        });
      });
    });
  }

  it('reads an empty MBR (signature, no partitions) as an MBR without partitions', async () => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'e.img');
      await writeFile(img, '');
      await truncate(img, 4 * 1024 * 1024);
      execFileSync('sfdisk', ['-q', img], { input: 'label: dos\n' });
      await withFileVolume(img, async (v) => {
        const t = await readPartitionTable(v);
        assert.equal(t.type, 'mbr');
        assert.deepEqual(t.partitions, []);
      });
    });
  });
});

describe('GPT partition tables made by sgdisk', {
  skip: haveSgdisk ? false : 'sgdisk (gdisk) not installed',
}, () => {
  async function makeGpt(dir: string, size = 64 * 1024 * 1024): Promise<string> {
    const img = join(dir, 'gpt.img');
    await writeFile(img, '');
    await truncate(img, size);
    execFileSync(
      'sgdisk',
      [
        '-U',
        '11223344-5566-7788-99aa-bbccddeeff00',
        '-n',
        '1:2048:+1M',
        '-t',
        '1:ef02',
        '-c',
        '1:BIOS boot',
        '-n',
        '2:0:+10M',
        '-t',
        '2:ef00',
        '-c',
        '2:EFI System Partition',
        '-n',
        '3:0:+20M',
        '-t',
        '3:8300',
        '-c',
        '3:root ✓',
        '-A',
        '3:set:2',
        '-n',
        '5:0:+5M',
        '-t',
        '5:8200',
        '-u',
        '5:01234567-89ab-cdef-0123-456789abcdef',
        '-n',
        '6:0:+4M',
        '-t',
        '6:0700',
        img,
      ],
      { stdio: 'ignore' },
    );
    return img;
  }

  it('reads BIOS boot, EFI system, Linux, swap and basic data partitions with names, GUIDs and attributes', async () => {
    await withTempDir(async (dir) => {
      const img = await makeGpt(dir);
      await withFileVolume(img, async (v, counter) => {
        const t = await readPartitionTable(v);
        assert.equal(t.type, 'gpt');
        assert.equal(t.sectorSize, 512);
        assert.deepEqual(t.findings, []);
        assert.equal(t.protectiveMbr, true);
        assert.equal(t.hybridMbr, false);
        assert.equal(t.diskGuid, sfdiskJson(img).id.toLowerCase());
        assert.equal(t.diskGuid, '11223344-5566-7788-99aa-bbccddeeff00');
        assertMatchesPartx(t, partx(img));
        assert.deepEqual(
          t.partitions.map((p) => [p.index, p.type, p.kind]),
          [
            [1, 'bios-boot', 'gpt'],
            [2, 'efi-system', 'gpt'],
            [3, 'linux-filesystem', 'gpt'],
            [5, 'linux-swap', 'gpt'],
            [6, 'microsoft-basic-data', 'gpt'],
          ],
        );
        assert.equal(t.partitions[2]!.name, 'root ✓');
        assert.equal(t.partitions[2]!.bootable, true);
        assert.equal(t.partitions[3]!.uuid, '01234567-89ab-cdef-0123-456789abcdef');
        assert.ok(counter.bytes < 64 * 1024, `read ${counter.bytes} bytes`);
      });
    });
  });

  it('names the partition types sgdisk writes', async () => {
    const codes: Record<string, string> = {
      ef02: 'bios-boot',
      ef00: 'efi-system',
      '8300': 'linux-filesystem',
      '8200': 'linux-swap',
      '8e00': 'linux-lvm',
      fd00: 'linux-raid',
      '8302': 'linux-home',
      '8304': 'linux-root-x86-64',
      '8303': 'linux-root-x86',
      ea00: 'linux-extended-boot',
      '0700': 'microsoft-basic-data',
      '0c01': 'microsoft-reserved',
      '2700': 'windows-recovery',
    };
    await withTempDir(async (dir) => {
      const img = join(dir, 'types.img');
      await writeFile(img, '');
      await truncate(img, 32 * 1024 * 1024);
      const args: string[] = [];
      for (const [i, code] of Object.keys(codes).entries()) {
        args.push('-n', `${i + 1}:0:+1M`, '-t', `${i + 1}:${code}`);
      }
      execFileSync('sgdisk', [...args, img], { stdio: 'ignore' });
      await withFileVolume(img, async (v) => {
        const t = await readPartitionTable(v);
        assert.deepEqual(
          t.partitions.map((p) => p.typeName),
          Object.values(codes),
        );
        assertMatchesPartx(t, partx(img));
      });
    });
  });

  it('recognizes a hybrid MBR (sgdisk -h)', async () => {
    await withTempDir(async (dir) => {
      const img = await makeGpt(dir);
      execFileSync('sgdisk', ['-h', '2:3', img], { stdio: 'ignore' });
      await withFileVolume(img, async (v) => {
        const t = await readPartitionTable(v);
        assert.equal(t.type, 'gpt');
        assert.equal(t.hybridMbr, true);
        assert.equal(t.protectiveMbr, false);
        assert.deepEqual(
          t.findings.map((f) => f.code),
          ['GPT_HYBRID_MBR'],
        );
        assertMatchesPartx(t, partx(img));
      });
    });
  });

  it('reports a disk grown without moving the backup GPT, and nothing once sgdisk -e moves it', async () => {
    await withTempDir(async (dir) => {
      const img = await makeGpt(dir, 48 * 1024 * 1024);
      await truncate(img, 64 * 1024 * 1024);
      await withFileVolume(img, async (v) => {
        const t = await readPartitionTable(v);
        assert.deepEqual(t.findings.map((f) => f.code).sort(), [
          'GPT_BACKUP_MISMATCH',
          'GPT_PMBR_SIZE_MISMATCH',
        ]);
        assert.match(t.findings.find((f) => f.code === 'GPT_BACKUP_MISMATCH')!.message, /grown/);
        assertMatchesPartx(t, partx(img));
      });
      execFileSync('sgdisk', ['-e', img], { stdio: 'ignore' });
      await withFileVolume(img, async (v) => {
        assert.deepEqual((await readPartitionTable(v)).findings, []);
      });
    });
  });

  it('uses the backup GPT when the primary is destroyed, as sgdisk would', async () => {
    await withTempDir(async (dir) => {
      const img = await makeGpt(dir);
      const rows = partx(img);
      const fh = await open(img, 'r+');
      await fh.write(Buffer.alloc(512, 0x41), 0, 512, 512);
      await fh.close();
      await withFileVolume(img, async (v) => {
        const t = await readPartitionTable(v);
        assert.deepEqual(
          t.findings.map((f) => f.code),
          ['GPT_PRIMARY_CORRUPT'],
        );
        assertMatchesPartx(t, rows);
      });
    });
  });

  it('writes GPTs in test/corpus that sfdisk and sgdisk accept', async () => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'built.img');
      await writeFile(img, smallGpt(512));
      const out = execFileSync('sgdisk', ['-v', img], { encoding: 'utf8' });
      assert.match(out, /No problems found/);
      const t = await readPartitionTable(bufferVolume(await readFile(img)));
      assertMatchesPartx(t, partx(img));
    });
  });
});

describe('GPT with 4096-byte sectors', () => {
  it('finds the header at byte 4096 and reads LBAs in 4 KiB units', async () => {
    const t = await readPartitionTable(bufferVolume(smallGpt(4096)));
    assert.equal(t.type, 'gpt');
    assert.equal(t.sectorSize, 4096);
    assert.deepEqual(t.findings, []);
    assert.deepEqual(
      t.partitions.map((p) => [p.index, p.start, p.size]),
      [
        [1, 8 * 4096, 8 * 4096],
        [2, 16 * 4096, 112 * 4096],
        [3, 128 * 4096, 120 * 4096],
      ],
    );
    assert.deepEqual(t.usable, { start: 6 * 4096, end: 507 * 4096 });
  });

  it('uses the backup at the last 4 KiB sector when the primary is gone', async () => {
    const buf = smallGpt(4096);
    buf.fill(0, 4096, 8192);
    const t = await readPartitionTable(bufferVolume(buf));
    assert.equal(t.sectorSize, 4096);
    assert.deepEqual(
      t.findings.map((f) => f.code),
      ['GPT_PRIMARY_CORRUPT'],
    );
    assert.equal(t.partitions.length, 3);
  });
});

describe('disks without a partition table', () => {
  it('reads all zeros as none, with no boot code', async () => {
    const t = await readPartitionTable(bufferVolume(Buffer.alloc(1024 * 1024)));
    assert.equal(t.type, 'none');
    assert.equal(t.bootCode, 'none');
    assert.deepEqual(t.partitions, []);
  });

  it('reads a disk smaller than two sectors as none', async () => {
    assert.equal((await readPartitionTable(bufferVolume(Buffer.alloc(0)))).type, 'none');
    assert.equal((await readPartitionTable(bufferVolume(Buffer.alloc(700, 1)))).type, 'none');
  });

  const wholeDisk: [string, string[], (img: string) => string[]][] = [
    ['mkfs.vfat', [], (img) => ['-C', img, '8192']],
    ['mkfs.vfat', [], (img) => ['-C', '-F', '32', img, '40000']],
    ['mke2fs', ['truncate'], (img) => ['-q', '-F', '-t', 'ext4', img, '8M']],
    ['mkntfs', ['truncate'], (img) => ['-q', '-F', '-f', img]],
  ];
  for (const [tool, prep, args] of wholeDisk) {
    it(`reads a filesystem made by ${tool} ${args('x').join(' ')} on the whole disk as none`, {
      skip: have(tool) ? false : `${tool} not installed`,
    }, async () => {
      await withTempDir(async (dir) => {
        const img = join(dir, 'fs.img');
        if (prep.includes('truncate')) {
          await writeFile(img, '');
          await truncate(img, 8 * 1024 * 1024);
        }
        execFileSync(tool, args(img), { stdio: 'ignore' });
        await withFileVolume(img, async (v) => {
          const t = await readPartitionTable(v);
          assert.equal(t.type, 'none');
          assert.deepEqual(t.partitions, []);
        });
      });
    });
  }
});

/** grub-legacy conflicts with libguestfs's grub2-common, so its stage1 comes unpacked into the corpus cache. */
const GRUB_LEGACY_STAGE1 =
  [
    '/usr/lib/grub/x86_64-pc/stage1',
    join(
      process.env.FERRY_CORPUS_CACHE ?? join(homedir(), '.cache', 'ferry'),
      'grub-legacy/tree/usr/lib/grub/x86_64-pc/stage1',
    ),
  ].find((p) => existsSync(p)) ?? '/usr/lib/grub/x86_64-pc/stage1';

/** Real boot code from Debian packages, written over a real MBR. */
describe('boot code', () => {
  const samples: [string, string, string][] = [
    ['/usr/lib/grub/i386-pc/boot.img', 'grub2', 'grub-pc-bin'],
    ['/usr/lib/grub/i386-pc/boot_hybrid.img', 'grub2', 'grub-pc-bin'],
    [GRUB_LEGACY_STAGE1, 'grub-legacy', 'grub-legacy, unpacked by scripts/make-debian-root.sh'],
    ['/usr/lib/syslinux/mbr/mbr.bin', 'syslinux', 'syslinux-common'],
    ['/usr/lib/syslinux/mbr/gptmbr.bin', 'syslinux', 'syslinux-common'],
    ['/usr/lib/syslinux/mbr/altmbr.bin', 'syslinux', 'syslinux-common'],
    ['/usr/lib/syslinux/mbr/extra/mbr_c.bin', 'syslinux', 'syslinux-common'],
    ['/usr/lib/syslinux/mbr/extra/gptmbr_f.bin', 'syslinux', 'syslinux-common'],
  ];
  for (const [path, expected, pkg] of samples) {
    it(`names ${path} as ${expected}`, {
      skip: existsSync(path) ? false : `${path} missing (Debian ${pkg})`,
    }, async () => {
      const code = await readFile(path);
      // Over an MBR with a partition table, as grub-install / install-mbr / dd would leave it.
      const disk = Buffer.alloc(1024 * 1024);
      code.copy(disk, 0, 0, Math.min(code.length, 440));
      disk.writeUInt32LE(0xcafe, 440);
      disk[446 + 4] = 0x83;
      disk.writeUInt32LE(2048, 446 + 8);
      disk.writeUInt32LE(10, 446 + 12);
      disk[510] = 0x55;
      disk[511] = 0xaa;
      const t = await readPartitionTable(bufferVolume(disk));
      assert.equal(t.type, 'mbr');
      assert.equal(t.bootCode, expected);
    });
  }

  it('names the EXTLINUX volume boot record (sector 0 of a partitionless disk) as syslinux', {
    skip: existsSync('/usr/bin/extlinux') ? false : 'extlinux not installed',
  }, async () => {
    // extlinux --install needs a mounted filesystem; its boot sector template is inside the binary.
    const bin = await readFile('/usr/bin/extlinux');
    const at = bin.indexOf('Boot error');
    let vbr: Buffer | null = null;
    for (let start = Math.max(0, at - 510); start <= at && vbr === null; start++) {
      if (bin[start + 510] === 0x55 && bin[start + 511] === 0xaa && bin[start] === 0xeb)
        vbr = bin.subarray(start, start + 512);
    }
    assert.ok(vbr !== null, 'no boot sector template in /usr/bin/extlinux');
    const disk = Buffer.alloc(1024 * 1024);
    vbr.copy(disk);
    assert.equal(detectBootCode(disk), 'syslinux');
  });

  it('names install-mbr boot code as unknown', {
    skip: have('install-mbr') ? false : 'install-mbr (Debian mbr) not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'm.img');
      await writeFile(img, Buffer.alloc(1024 * 1024));
      execFileSync('install-mbr', ['--force', img], { stdio: 'ignore' });
      assert.equal(detectBootCode(await readFile(img)), 'unknown');
    });
  });

  /**
   * Microsoft's MBR code is not in any Debian package: these sectors carry
   * the relocation prologue Windows NT 6+ and NT 5 MBRs start with and the
   * English messages at the offsets Windows 7 uses (message offsets at 0x1B5),
   * the rest zeros.
   */
  function windowsLike(prefixHex: string | null, messages: boolean): Buffer {
    const s = Buffer.alloc(512);
    if (prefixHex !== null) Buffer.from(prefixHex, 'hex').copy(s, 0);
    if (messages) {
      s.write('Invalid partition table\0', 0x163, 'latin1');
      s.write('Error loading operating system\0', 0x17b, 'latin1');
      s.write('Missing operating system\0', 0x19a, 'latin1');
      s[0x1b5] = 0x63;
      s[0x1b6] = 0x7b;
      s[0x1b7] = 0x9a;
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    return s;
  }
  it('names Windows MBRs by their prologue or their messages', () => {
    const nt6 = '33c08ed0bc007c8ec08ed8be007cbf0006b90002fcf3a450681c06cb';
    const nt5 = '33c08ed0bc007cfb5007501ffcbe1b7cbf1b065057b9e501f3a4cb';
    assert.equal(detectBootCode(windowsLike(nt6, true)), 'windows');
    assert.equal(detectBootCode(windowsLike(nt6, false)), 'windows');
    assert.equal(detectBootCode(windowsLike(nt5, false)), 'windows');
    assert.equal(detectBootCode(windowsLike(null, true)), 'windows');
  });

  it('names zeros none and anything else unknown', () => {
    assert.equal(detectBootCode(Buffer.alloc(512)), 'none');
    const s = Buffer.alloc(512);
    s[510] = 0x55;
    s[511] = 0xaa;
    assert.equal(detectBootCode(s), 'none');
    assert.equal(detectBootCode(pseudoRandom(512, 'mbr')), 'unknown');
    // Only "Missing operating system" (which SYSLINUX's mbr.bin also prints) is not Windows.
    const one = Buffer.alloc(512);
    one.write('Missing operating system', 100, 'latin1');
    assert.equal(detectBootCode(one), 'unknown');
  });
});

describe('crc32', () => {
  it('matches the standard check value and zlib', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
    assert.equal(crc32(Buffer.from('The quick brown fox jumps over the lazy dog')), 0x414fa339);
    const data = pseudoRandom(10_000, 'crc');
    assert.equal(crc32(data.subarray(5000), crc32(data.subarray(0, 5000))), crc32(data));
  });
});
