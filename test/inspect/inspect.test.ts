import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { convertImage, openImage } from '../../src/disk/index.js';
import { inspectImage } from '../../src/inspect/index.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/qemu.js';

const haveTools = spawnSync('sh', ['-c', 'command -v mke2fs && command -v sfdisk']).status === 0;
const BOOT_IMG = '/usr/lib/grub/i386-pc/boot.img';
const HAVE_BOOT_IMG = existsSync(BOOT_IMG);
const KVER = '6.1.0-18-cloud-amd64';
const UUID = '11111111-2222-3333-4444-555555555555';

/** A fake bzImage header: version string and the 64-bit flag. */
function bzImage(version: string): Buffer {
  const b = Buffer.alloc(0x1000);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x020f, 0x206);
  b.writeUInt16LE(0x600, 0x20e);
  b.write(`${version} (debian-kernel@lists.debian.org) #1 SMP\0`, 0x800, 'latin1');
  b.writeUInt16LE(1, 0x236);
  return b;
}

/** A Debian-like root on MBR partition 1 (ext4), built with mke2fs -d and sfdisk. */
async function makeDisk(
  dir: string,
  opts: { initrd: boolean; osRelease: boolean; fstab: string },
): Promise<string> {
  const root = join(dir, 'root');
  for (const d of ['etc', 'boot/grub', 'usr/bin', `lib/modules/${KVER}`])
    await mkdir(join(root, d), { recursive: true });
  if (opts.osRelease)
    await writeFile(
      join(root, 'etc/os-release'),
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    );
  await writeFile(join(root, 'etc/fstab'), opts.fstab);
  await writeFile(
    join(root, 'boot/grub/grub.cfg'),
    `linux /boot/vmlinuz-${KVER} root=UUID=${UUID} ro console=ttyS0\n`,
  );
  await writeFile(join(root, `boot/vmlinuz-${KVER}`), bzImage(KVER));
  if (opts.initrd) await writeFile(join(root, `boot/initrd.img-${KVER}`), 'initrd');
  await writeFile(
    join(root, `lib/modules/${KVER}/modules.builtin`),
    'kernel/drivers/nvme/host/nvme.ko\n',
  );
  await mkdir(join(root, `lib/modules/${KVER}/kernel/drivers/block`), { recursive: true });
  await writeFile(join(root, `lib/modules/${KVER}/kernel/drivers/block/virtio_blk.ko`), 'ko');
  await writeFile(join(root, 'usr/bin/cloud-init'), '#!/bin/sh\n');
  const fs = join(dir, 'fs.img');
  execFileSync(
    'mke2fs',
    ['-q', '-t', 'ext4', '-U', UUID, '-L', 'root', '-d', root, '-F', fs, '32M'],
    { stdio: 'ignore' },
  );
  const disk = join(dir, 'disk.img');
  const fh = await open(disk, 'w');
  await fh.truncate(40 * 1024 * 1024);
  await fh.close();
  execFileSync('sfdisk', ['-q', disk], { input: 'start=2048, type=83, bootable\n' });
  execFileSync('dd', [
    `if=${fs}`,
    `of=${disk}`,
    'bs=512',
    'seek=2048',
    'conv=notrunc',
    'status=none',
  ]);
  // GRUB 2's real boot.img in the MBR's first 440 bytes (Debian grub-pc-bin).
  if (HAVE_BOOT_IMG)
    execFileSync('dd', [
      `if=${BOOT_IMG}`,
      `of=${disk}`,
      'bs=440',
      'count=1',
      'conv=notrunc',
      'status=none',
    ]);
  return disk;
}

describe('inspect', { skip: haveTools ? false : 'mke2fs or sfdisk missing' }, () => {
  it('reports the facts of a Debian-like MBR disk and the same facts through qcow2', async () => {
    await withTempDir(async (dir) => {
      const disk = await makeDisk(dir, {
        initrd: true,
        osRelease: true,
        fstab: `UUID=${UUID} / ext4 defaults 0 1\n`,
      });
      const q = join(dir, 'disk.qcow2');
      await convertImage(disk, q, { to: 'qcow2' });
      for (const path of [disk, q]) {
        const img = await openImage(path);
        try {
          const r = await inspectImage(img, path);
          assert.equal(r.partitionTable.type, 'mbr');
          assert.deepEqual(
            r.partitionTable.partitions.map((p) => [p.index, p.start, p.bootable, p.filesystem]),
            [[1, 1024 * 1024, true, 'ext4']],
          );
          assert.deepEqual(
            r.filesystems.map((f) => [f.type, f.uuid, f.label]),
            [['ext4', UUID, 'root']],
          );
          assert.equal(r.os?.type, 'linux');
          assert.equal(r.os?.distro, 'debian');
          assert.equal(r.os?.version, '12');
          assert.equal(r.os?.root.partition, 1);
          assert.deepEqual(
            r.kernels.map((k) => [
              k.version,
              k.arch,
              k.initrd,
              k.drivers.nvme,
              k.drivers.virtio_blk,
            ]),
            [[KVER, 'x86_64', `/boot/initrd.img-${KVER}`, 'builtin', 'module']],
          );
          assert.equal(r.bootloader.type, 'grub2');
          assert.equal(r.cloudInit, true);
          assert.equal(r.serialConsole, true);
          // qcow2 is not a VM Import format; without GRUB's boot code the disk cannot boot.
          const expected = path.endsWith('.qcow2') || !HAVE_BOOT_IMG ? 'fail' : 'pass';
          assert.equal(r.verdicts['aws-import'], expected, JSON.stringify(r.findings));
          assert.deepEqual(r.bootloader.firmware, HAVE_BOOT_IMG ? ['bios'] : []);
          assert.ok(r.bytesRead < 1024 * 1024, `read ${r.bytesRead} bytes`);
          assert.ok(r.seconds < 1);
        } finally {
          await img.close();
        }
      }
    });
  });

  it('predicts the cloud messages for missing OS files, device-name fstab and no initrd', async () => {
    await withTempDir(async (dir) => {
      const disk = await makeDisk(dir, {
        initrd: false,
        osRelease: false,
        fstab: '/dev/sda1 / ext4 defaults 0 1\n',
      });
      const r = await runCli([
        'inspect',
        disk,
        '--output',
        'json',
        '--strict',
        '--target',
        'aws-import,openstack',
      ]);
      assert.equal(r.code, 1, r.stderr);
      const rep = JSON.parse(r.stdout) as {
        findings: Array<{ code: string; cloudMessage: string | null }>;
        verdicts: Record<string, string>;
      };
      const codes = rep.findings.map((f) => f.code);
      assert.ok(codes.includes('OS_UNKNOWN'));
      assert.equal(
        rep.findings.find((f) => f.code === 'OS_UNKNOWN')?.cloudMessage,
        'ClientError: Unknown OS / Missing OS files.',
      );
      assert.ok(codes.includes('NO_INITRD'));
      assert.ok(
        codes.includes('MISSING_VIRTIO'),
        'virtio_blk is a module with no initrd to load it',
      );
      assert.deepEqual(Object.keys(rep.verdicts).sort(), ['aws-import', 'openstack']);
      assert.equal(rep.verdicts['aws-import'], 'fail');
      const ebs = await runCli(['inspect', disk, '--output', 'json', '--target', 'aws-ebs']);
      const e = JSON.parse(ebs.stdout) as { findings: Array<{ code: string }> };
      assert.ok(e.findings.some((f) => f.code === 'FSTAB_DEVICE_NAMES'));
    });
  });

  it('calls an all-zero disk empty', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'zero.img');
      const fh = await open(p, 'w');
      await fh.truncate(8 * 1024 * 1024);
      await fh.close();
      const img = await openImage(p);
      try {
        const r = await inspectImage(img, p);
        assert.equal(r.partitionTable.type, 'none');
        assert.equal(r.os, null);
        assert.deepEqual(
          r.findings.map((f) => f.code),
          ['DISK_EMPTY'],
        );
        assert.equal(
          r.findings[0]?.cloudMessage,
          'ClientError: No valid partitions. Not a valid volume.',
        );
        assert.deepEqual(r.verdicts, {
          'aws-import': 'fail',
          'aws-ebs': 'fail',
          openstack: 'fail',
          local: 'fail',
        });
      } finally {
        await img.close();
      }
    });
  });
});
