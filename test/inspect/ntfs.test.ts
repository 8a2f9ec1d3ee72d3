import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { openNtfs } from '../../src/inspect/fs/ntfs/index.js';
import { bufferVolume } from '../../src/inspect/volume.js';
import { Hive } from '../../src/inspect/windows/hive.js';
import { readWindows } from '../../src/inspect/windows/windows.js';
import { pseudoRandom } from '../helpers/disks.js';
import { buildHive } from '../helpers/hive-builder.js';
import { withTempDir } from '../helpers/qemu.js';

const SOFTWARE = buildHive({
  keys: {
    Microsoft: {
      keys: {
        'Windows NT': {
          keys: {
            CurrentVersion: {
              values: {
                ProductName: 'Windows Server 2022 Datacenter',
                CurrentBuildNumber: '20348',
                CurrentMajorVersionNumber: 10,
                CurrentMinorVersionNumber: 0,
                EditionID: 'ServerDatacenter',
                InstallationType: 'Server',
              },
            },
          },
        },
      },
    },
  },
});
const SYSTEM = buildHive({
  keys: {
    Select: { values: { Current: 1 } },
    ControlSet001: { keys: { Services: { keys: { stornvme: {}, netkvm: {}, Tcpip: {} } } } },
  },
});

/** Mounts a fresh NTFS image with ntfs-3g (FUSE) and fills it; null when FUSE is unavailable here. */
export async function makeNtfs(
  dir: string,
): Promise<{ img: Buffer; files: Map<string, Buffer> } | null> {
  const img = join(dir, 'ntfs.img');
  await writeFile(img, '');
  await truncate(img, 48 * 1024 * 1024);
  execFileSync('mkntfs', ['-q', '-F', '-Q', '-L', 'Windows', img], { stdio: 'ignore' });
  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  if (spawnSync('ntfs-3g', [img, mnt], { stdio: 'ignore' }).status !== 0) return null;
  const files = new Map<string, Buffer>([
    ['/Windows/System32/config/SOFTWARE', SOFTWARE],
    ['/Windows/System32/config/SYSTEM', SYSTEM],
    ['/Windows/System32/ntoskrnl.exe', pseudoRandom(2 * 1024 * 1024 + 77, 'nt')],
    ['/Windows/win.ini', Buffer.from('; for 16-bit app support\r\n')],
    ['/tiny.txt', Buffer.from('resident data')],
  ]);
  try {
    await mkdir(join(mnt, 'Windows', 'System32', 'config'), { recursive: true });
    await mkdir(join(mnt, 'Windows', 'SysWOW64'));
    await mkdir(join(mnt, 'Program Files', 'Many'), { recursive: true });
    for (let i = 0; i < 400; i++) {
      const p = `/Program Files/Many/file-with-a-long-name-${i}.dll`;
      files.set(p, Buffer.from(`dll ${i}`));
    }
    for (const [p, data] of files) await writeFile(join(mnt, p), data);
  } finally {
    execFileSync('fusermount', ['-u', mnt], { stdio: 'ignore' });
  }
  return { img: await readFile(img), files };
}

const haveNtfs3g =
  spawnSync('sh', ['-c', 'command -v mkntfs && command -v ntfs-3g && test -e /dev/fuse']).status ===
  0;

describe('ntfs reader and Windows detection', {
  skip: haveNtfs3g ? false : 'ntfs-3g or /dev/fuse not available',
}, () => {
  it('reads resident and non-resident files, large indexes, case-insensitively, and finds Windows', async (t) => {
    await withTempDir(async (dir) => {
      const made = await makeNtfs(dir);
      if (made === null) {
        t.skip('ntfs-3g could not mount (no FUSE here)');
        return;
      }
      const driver = await openNtfs(bufferVolume(made.img));
      assert.ok(driver !== null);
      assert.equal(await driver.label, 'Windows');
      const fs = new FsTree(driver);
      for (const [p, data] of made.files)
        assert.deepEqual(await fs.readFile(p, 8 * 1024 * 1024), data, p);
      assert.deepEqual(await fs.readFile('/WINDOWS/system32/CONFIG/software'), SOFTWARE);
      const many = (await fs.readDir('/Program Files/Many')) ?? [];
      assert.equal(many.length, 400);
      const win = await readWindows(fs);
      assert.deepEqual(win, {
        productName: 'Windows Server 2022 Datacenter',
        version: '10.0',
        build: '20348',
        edition: 'ServerDatacenter',
        displayVersion: null,
        installationType: 'Server',
        arch: 'x86_64',
        systemRoot: '/Windows',
        drivers: {
          virtio_blk: false,
          virtio_scsi: false,
          virtio_net: true,
          nvme: true,
          ena: false,
          xen: false,
        },
      });
    });
  });

  it('finds no Windows on an empty NTFS volume', async (t) => {
    await withTempDir(async (dir) => {
      const img = join(dir, 'e.img');
      await writeFile(img, '');
      await truncate(img, 16 * 1024 * 1024);
      execFileSync('mkntfs', ['-q', '-F', '-Q', img], { stdio: 'ignore' });
      const driver = await openNtfs(bufferVolume(await readFile(img)));
      assert.ok(driver !== null);
      assert.equal(await readWindows(new FsTree(driver)), null);
      t.diagnostic('empty volume read');
    });
  });
});

describe('registry hive reader', () => {
  it('agrees with the hive it was built from', async () => {
    const h = await Hive.open(
      async (o, l) => Buffer.from(SOFTWARE.subarray(o, o + l)),
      SOFTWARE.length,
    );
    const v = await h.values('microsoft\\WINDOWS NT\\currentversion');
    assert.equal(v?.get('ProductName'), 'Windows Server 2022 Datacenter');
    assert.equal(v?.get('CurrentMajorVersionNumber'), 10);
    assert.equal(await h.values('Microsoft\\Nope'), null);
    assert.deepEqual(await h.subkeys('Microsoft'), ['Windows NT']);
  });

  it('refuses a hive with a bad checksum or a cell offset outside it', async () => {
    const bad = Buffer.from(SOFTWARE);
    bad[100] = 1;
    await assert.rejects(
      Hive.open(async (o, l) => Buffer.from(bad.subarray(o, o + l)), bad.length),
      (e: unknown) => (e as { code?: string }).code === 'FERRY_HIVE_CORRUPT',
    );
    const off = Buffer.from(SOFTWARE);
    off.writeUInt32LE(0x7ffffff8, 36);
    let sum = 0;
    for (let i = 0; i < 508; i += 4) sum = (sum ^ off.readUInt32LE(i)) >>> 0;
    off.writeUInt32LE(sum, 508);
    await assert.rejects(
      Hive.open(async (o, l) => Buffer.from(off.subarray(o, o + l)), off.length),
      (e: unknown) => (e as { code?: string }).code === 'FERRY_HIVE_CORRUPT',
    );
  });
});
