/**
 * EXTLINUX installed by the disk render without mounting anything: the
 * image is read back with e2fsprogs and the partition tables' own tools,
 * and the patched ldlinux.sys must point, sector by sector, at its own
 * bytes in the filesystem; for UEFI the ESP holds syslinux.efi and what it
 * boots. (The QEMU boots are in boot.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  EXTLINUX_BIN,
  extractExtlinux,
  LDLINUX_MAGIC,
  loadExtlinux,
  readExtlinuxInstall,
} from '../../src/render/boot/extlinux.js';
import { mapPathOf, renderDisk } from '../../src/render/index.js';
import { ingestDirectory, LocalStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const KERNEL = 'boot/vmlinuz-6.1.0-10-amd64';
const SYSLINUX_EFI = '/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi';
const INITRD = 'boot/initrd.img-6.1.0-10-amd64';

function missingTools(): string | false {
  if (!existsSync(EXTLINUX_BIN)) return 'extlinux not installed';
  for (const t of ['e2fsck', 'debugfs', 'sgdisk', 'sfdisk', 'fsck.fat', 'mcopy'])
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} missing`;
  return false;
}

async function tree(dir: string, hostname = 'extlinux'): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'boot'), { recursive: true });
  await writeFile(join(dir, 'etc/hostname'), `${hostname}\n`);
  await writeFile(join(dir, KERNEL), Buffer.alloc(300_000, 7));
  await writeFile(join(dir, INITRD), Buffer.alloc(200_000, 9));
}

interface DiskMapLike {
  partitions: { role: string; firstLba: number; lastLba: number }[];
  fs: { nodes: Record<string, { runs: { logical: number; physical: number; length: number }[] }> };
}

async function debugfs(part: string, request: string): Promise<Buffer> {
  const { stdout } = await run('debugfs', ['-R', request, part], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Checks a rendered EXTLINUX disk from its bytes; returns ldlinux.sys's blocks. */
async function checkDisk(
  dir: string,
  disk: string,
  table: 'gpt' | 'mbr',
  rootUuid: string,
): Promise<number[]> {
  const bytes = await readFile(disk);
  const map = JSON.parse(await readFile(mapPathOf(disk), 'utf8')) as DiskMapLike;
  assert.ok(
    map.partitions.every((p) => p.role !== 'bios-boot'),
    'EXTLINUX needs no BIOS boot partition',
  );
  const rootIndex = map.partitions.findIndex((p) => p.role === 'root');
  const root = map.partitions[rootIndex]!;
  const rootBytes = bytes.subarray(root.firstLba * 512, (root.lastLba + 1) * 512);
  const part = join(dir, `${table}-root.part`);
  await writeFile(part, rootBytes);
  await run('e2fsck', ['-fn', part]);

  // ldlinux.sys as the filesystem has it, and the blocks it lies in.
  const file = await debugfs(part, 'cat /boot/extlinux/ldlinux.sys');
  const blocks = (await debugfs(part, 'blocks /boot/extlinux/ldlinux.sys'))
    .toString()
    .trim()
    .split(/\s+/)
    .map(Number);
  assert.equal(blocks.length, Math.ceil(file.length / 4096));
  const install = readExtlinuxInstall(file, rootBytes.subarray(0, 512));
  // The negative checksum: the image's dwords sum to the magic.
  let sum = 0;
  for (let i = 0; i < install.dataSectors * 128; i++) sum = (sum + file.readUInt32LE(i * 4)) >>> 0;
  assert.equal(sum, LDLINUX_MAGIC, 'ldlinux.sys checksum');
  assert.equal(install.checksumOk, true);
  assert.equal(install.sectors.length, install.dataSectors + 2);
  assert.equal(file.length, (install.dataSectors + 2) * 512, 'the image and two ADV sectors');
  // Every sector the boot code loads is the file's own, in order: the first, the extents, the ADVs.
  const fileSectors = blocks.flatMap((b) => Array.from({ length: 8 }, (_, i) => b * 8 + i));
  assert.deepEqual(install.sectors, fileSectors.slice(0, install.sectors.length));
  install.sectors.forEach((s, i) => {
    assert.ok(
      rootBytes.subarray(s * 512, s * 512 + 512).equals(file.subarray(i * 512, i * 512 + 512)),
      `sector ${i} of ldlinux.sys at ${s}`,
    );
  });
  assert.equal(install.dir, '/boot/extlinux');
  assert.equal(
    install.hiddenSectors,
    root.firstLba,
    'the boot sector knows where its partition is',
  );
  assert.equal(rootBytes.readUInt16LE(510), 0xaa55);
  // The two ADV copies are intact (head, checksum, tail) and equal.
  const adv = file.subarray(install.dataSectors * 512);
  assert.equal(adv.readUInt32LE(0), 0x5a2d2fa5);
  assert.equal(adv.readUInt32LE(508), 0xdd28bf64);
  assert.ok(adv.subarray(0, 512).equals(adv.subarray(512)));

  const conf = (await debugfs(part, 'cat /boot/extlinux/extlinux.conf')).toString();
  assert.match(conf, new RegExp(`^\\s*LINUX /${KERNEL}$`, 'm'));
  assert.match(conf, new RegExp(`^\\s*INITRD /${INITRD}$`, 'm'));
  assert.match(conf, new RegExp(`APPEND root=UUID=${rootUuid} `));
  assert.deepEqual(
    await debugfs(part, 'cat /boot/extlinux/ldlinux.c32'),
    await readFile('/usr/lib/syslinux/modules/bios/ldlinux.c32'),
  );

  // The MBR code, and the root marked for it.
  const code = await readFile(`/usr/lib/EXTLINUX/${table === 'mbr' ? 'mbr' : 'gptmbr'}.bin`);
  assert.ok(bytes.subarray(0, code.length).equals(code), `${table}: the MBR holds EXTLINUX's code`);
  if (table === 'mbr') {
    const { stdout } = await run('sfdisk', ['--json', disk]);
    const t = JSON.parse(stdout) as { partitiontable: { partitions: { bootable?: boolean }[] } };
    assert.equal(t.partitiontable.partitions[rootIndex]!.bootable, true);
  } else {
    assert.match((await run('sgdisk', ['-v', disk])).stdout, /No problems found/);
    const info = await run('sgdisk', ['-i', String(rootIndex + 1), disk]);
    assert.match(info.stdout, /Attribute flags: 0+4\n/);
  }
  return blocks;
}

describe('EXTLINUX on rendered disks', { skip: missingTools() }, () => {
  it('patches ldlinux.sys for its own blocks on MBR and GPT disks that e2fsck finds clean', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const { revision } = await ingestDirectory(store, src);
      const manifest = await store.getManifest(revision);
      for (const table of ['mbr', 'gpt'] as const) {
        const disk = join(dir, `${table}.img`);
        const r = await renderDisk(store, revision, manifest, {
          out: disk,
          table,
          boot: 'extlinux',
        });
        assert.equal(r.firmware, 'bios');
        assert.equal(r.bootloader, 'extlinux');
        assert.equal(r.kernel, KERNEL);
        await checkDisk(dir, disk, table, r.rootUuid);
        // ferry's own inspector names what it finds.
        const inspect = await runCli(['inspect', disk, '--output', 'json']);
        assert.equal(inspect.code, 0, inspect.stderr);
        assert.deepEqual((JSON.parse(inspect.stdout) as { bootloader: unknown }).bootloader, {
          type: 'extlinux',
          firmware: ['bios'],
        });
      }
    });
  });

  it('renders bit-identical disks twice, and a changed revision over a base keeps ldlinux.sys in place', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const one = await ingestDirectory(store, src);
      const m1 = await store.getManifest(one.revision);
      const hashes: string[] = [];
      let rootUuid = '';
      for (const name of ['a.img', 'b.img']) {
        ({ rootUuid } = await renderDisk(store, one.revision, m1, {
          out: join(dir, name),
          boot: 'extlinux',
        }));
        hashes.push(
          createHash('sha256')
            .update(await readFile(join(dir, name)))
            .digest('hex'),
        );
      }
      assert.equal(hashes[0], hashes[1]);
      if (existsSync(SYSLINUX_EFI)) {
        // With syslinux.efi and the kernel copies on the ESP as well.
        const both: Buffer[] = [];
        for (const name of ['c.img', 'd.img']) {
          await renderDisk(store, one.revision, m1, {
            out: join(dir, name),
            boot: 'extlinux',
            firmware: 'both',
          });
          both.push(
            createHash('sha256')
              .update(await readFile(join(dir, name)))
              .digest(),
          );
        }
        assert.deepEqual(both[0], both[1]);
      }
      const first = await checkDisk(dir, join(dir, 'a.img'), 'gpt', rootUuid);

      await tree(src, 'changed');
      const two = await ingestDirectory(store, src);
      const next = join(dir, 'next.img');
      const r = await renderDisk(store, two.revision, await store.getManifest(two.revision), {
        out: next,
        boot: 'extlinux',
        base: join(dir, 'a.img'),
      });
      assert.equal(r.rootUuid, rootUuid);
      assert.ok(r.keptFiles > 0);
      assert.deepEqual(await checkDisk(dir, next, 'gpt', r.rootUuid), first);
    });
  });

  it('puts syslinux.efi, its configuration, the kernel and the initrd on the ESP for UEFI', {
    skip: existsSync(SYSLINUX_EFI) ? false : 'syslinux-efi not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const { revision } = await ingestDirectory(store, src);
      const manifest = await store.getManifest(revision);
      for (const firmware of ['both', 'uefi'] as const) {
        const disk = join(dir, `${firmware}.img`);
        const r = await renderDisk(store, revision, manifest, {
          out: disk,
          boot: 'extlinux',
          firmware,
        });
        assert.equal(r.firmware, firmware);
        assert.equal(r.bootloader, 'extlinux');
        // BIOS as on a BIOS-only disk; UEFI alone leaves the root and the MBR code alone.
        if (firmware === 'both') await checkDisk(dir, disk, 'gpt', r.rootUuid);
        const bytes = await readFile(disk);
        const map = JSON.parse(await readFile(mapPathOf(disk), 'utf8')) as DiskMapLike;
        const esp = map.partitions.find((p) => p.role === 'esp')!;
        const part = join(dir, `${firmware}-esp.part`);
        await writeFile(part, bytes.subarray(esp.firstLba * 512, (esp.lastLba + 1) * 512));
        await run('fsck.fat', ['-n', part]);
        const get = async (name: string): Promise<Buffer> => {
          const out = join(dir, `${firmware}-${name}`);
          await run('mcopy', ['-n', '-i', part, `::/EFI/BOOT/${name}`, out], {
            env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
          });
          return readFile(out);
        };
        assert.deepEqual(await get('BOOTX64.EFI'), await readFile(SYSLINUX_EFI));
        assert.deepEqual(
          await get('LDLINUX.E64'),
          await readFile('/usr/lib/syslinux/modules/efi64/ldlinux.e64'),
        );
        assert.deepEqual(await get('VMLINUZ'), await readFile(join(src, KERNEL)));
        assert.deepEqual(await get('INITRD.IMG'), await readFile(join(src, INITRD)));
        const conf = (await get('SYSLINUX.CFG')).toString();
        assert.match(conf, /^\s*LINUX \/EFI\/BOOT\/VMLINUZ$/m);
        assert.match(conf, /^\s*INITRD \/EFI\/BOOT\/INITRD.IMG$/m);
        assert.match(conf, new RegExp(`APPEND root=UUID=${r.rootUuid} `));
        if (firmware === 'uefi') {
          assert.ok(
            bytes.subarray(0, 440).every((b) => b === 0),
            'no BIOS boot code',
          );
          const rootPart = map.partitions.find((p) => p.role === 'root')!;
          const rp = join(dir, 'uefi-root.part');
          await writeFile(
            rp,
            bytes.subarray(rootPart.firstLba * 512, (rootPart.lastLba + 1) * 512),
          );
          await run('e2fsck', ['-fn', rp]);
          assert.doesNotMatch((await debugfs(rp, 'ls /boot')).toString(), /extlinux/);
        }
      }
    });
  });

  it('refuses an MBR disk for UEFI, and a missing or unrecognised extlinux as a missing tool', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const { revision } = await ingestDirectory(store, src);
      const manifest = await store.getManifest(revision);
      await assert.rejects(
        renderDisk(store, revision, manifest, {
          out: join(dir, 'x.img'),
          boot: 'extlinux',
          table: 'mbr',
          firmware: 'both',
        }),
        { code: 'FERRY_USAGE' },
      );
      assert.equal(existsSync(join(dir, 'x.img')), false);
      await assert.rejects(loadExtlinux(join(dir, 'no-extlinux')), {
        code: 'FERRY_RENDER_TOOL_MISSING',
      });
      assert.throws(() => extractExtlinux(Buffer.alloc(100_000, 0x90)), {
        code: 'FERRY_RENDER_TOOL_MISSING',
      });
      // The real binary: one boot sector and one ldlinux.sys of whole sectors.
      const x = extractExtlinux(await readFile(EXTLINUX_BIN));
      assert.equal(x.bootSector.length, 512);
      assert.equal(x.image.length % 512, 0);
      assert.match(x.version, /^SYSLINUX 6\./);
    });
  });
});
