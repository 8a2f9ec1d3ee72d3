/**
 * Rendered disks boot: a small busybox revision and the Debian revision of
 * the test corpus (scripts/make-debian-root.sh), each with SeaBIOS and with
 * OVMF under QEMU (TCG), asserted from what the image prints on the serial
 * console; the busybox revision with EXTLINUX too (SeaBIOS from MBR and
 * GPT, and syslinux.efi with OVMF from GPT). The busybox tree's /sbin/init is a script that prints a line
 * with the kernel command line and powers off.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { corpusTrees } from '../../scripts/inspect-corpus.js';
import { findBootFiles, mapPathOf, renderDisk, renderFilesystem } from '../../src/render/index.js';
import { ingestDirectory, ingestImage, LocalStore, type Manifest } from '../../src/store/index.js';
import { bootAndWatch, bootTestsMissing } from '../helpers/boot.js';

const run = promisify(execFile);
const found = corpusTrees();
const missing = 'missing' in found ? found.missing : bootTestsMissing();

async function partitionFile(
  disk: string,
  firstLba: number,
  lastLba: number,
  out: string,
): Promise<void> {
  await run('dd', [
    `if=${disk}`,
    `of=${out}`,
    'bs=512',
    `skip=${firstLba}`,
    `count=${lastLba - firstLba + 1}`,
    'conv=sparse',
    'status=none',
  ]);
}

describe('rendered disks boot under QEMU', {
  skip: missing ?? false,
  timeout: 30 * 60 * 1000,
}, () => {
  let dir = '';
  let store: LocalStore;
  let debian: { revision: string; manifest: Manifest };
  let busybox: { revision: string; manifest: Manifest };

  before(async () => {
    if (missing !== null || 'missing' in found) return;
    dir = await mkdtemp(join(tmpdir(), 'ferry-boot-'));
    store = await LocalStore.open(join(dir, 'store'));
    const d = await ingestDirectory(store, found.trees.root);
    debian = { revision: d.revision, manifest: await store.getManifest(d.revision) };
    // The busybox revision: a static busybox, an init script, and Debian's kernel and initramfs.
    const bb = join(dir, 'busybox-tree');
    for (const p of ['bin', 'sbin', 'boot', 'dev', 'proc', 'sys', 'run', 'tmp', 'etc'])
      await mkdir(join(bb, p), { recursive: true });
    await copyFile('/bin/busybox', join(bb, 'bin/busybox'));
    await chmod(join(bb, 'bin/busybox'), 0o755);
    await writeFile(
      join(bb, 'sbin/init'),
      [
        '#!/bin/busybox sh',
        '/bin/busybox mount -t proc proc /proc',
        'echo "FERRY-BOOT-OK cmdline=[$(/bin/busybox cat /proc/cmdline)] root=$(/bin/busybox stat -f -c %T /)" > /dev/console',
        '/bin/busybox poweroff -f',
        '',
      ].join('\n'),
    );
    await chmod(join(bb, 'sbin/init'), 0o755);
    const boot = findBootFiles(debian.manifest)!;
    await copyFile(join(found.trees.root, boot.kernel.path), join(bb, boot.kernel.path));
    await copyFile(join(found.trees.root, boot.initrd!.path), join(bb, boot.initrd!.path));
    const b = await ingestDirectory(store, bb);
    busybox = { revision: b.revision, manifest: await store.getManifest(b.revision) };
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('boots the busybox revision from a GPT disk with SeaBIOS and with OVMF, root found by UUID', async () => {
    const disk = join(dir, 'busybox.img');
    const r = await renderDisk(store, busybox.revision, busybox.manifest, { out: disk });
    assert.equal(r.firmware, 'both');
    const { stdout } = await run('sgdisk', ['-v', disk]);
    assert.match(stdout, /No problems found/);
    const map = JSON.parse(await readFile(mapPathOf(disk), 'utf8')) as {
      partitions: { role: string; firstLba: number; lastLba: number }[];
    };
    const root = map.partitions.find((p) => p.role === 'root')!;
    const esp = map.partitions.find((p) => p.role === 'esp')!;
    await partitionFile(disk, root.firstLba, root.lastLba, join(dir, 'root.part'));
    await run('e2fsck', ['-fn', join(dir, 'root.part')]);
    await partitionFile(disk, esp.firstLba, esp.lastLba, join(dir, 'esp.part'));
    await run('fsck.fat', ['-n', join(dir, 'esp.part')]);
    const fstab = await run('debugfs', ['-R', 'cat /etc/fstab', join(dir, 'root.part')]);
    assert.match(fstab.stdout, new RegExp(`UUID=${r.rootUuid} / ext4`));
    for (const firmware of ['bios', 'uefi'] as const) {
      const out = await bootAndWatch(disk, firmware, /FERRY-BOOT-OK[^\n]*\n/, dir);
      const line = /FERRY-BOOT-OK cmdline=\[([^\]]*)\] root=(\S+)/.exec(out)!;
      assert.ok(line[1]!.includes(`root=UUID=${r.rootUuid}`), `${firmware}: ${line[1]}`);
      assert.equal(line[2], 'ext2/ext3', `${firmware}: the root is the ext4 ferry wrote`);
    }
  });

  it('boots a changed revision rendered with --base the first disk, which differs from it in few chunks', async () => {
    const first = join(dir, 'busybox-1.img');
    const one = await renderDisk(store, busybox.revision, busybox.manifest, { out: first });
    // The next revision: the init prints another line.
    const bb = join(dir, 'busybox-tree');
    const init = await readFile(join(bb, 'sbin/init'), 'utf8');
    await writeFile(join(bb, 'sbin/init'), init.replace('FERRY-BOOT-OK', 'FERRY-BOOT-TWO'));
    const b = await ingestDirectory(store, bb);
    await writeFile(join(bb, 'sbin/init'), init);
    const second = join(dir, 'busybox-2.img');
    const two = await renderDisk(store, b.revision, await store.getManifest(b.revision), {
      out: second,
      base: first,
    });
    assert.equal(two.rootUuid, one.rootUuid, 'the lineage keeps its root UUID');
    assert.ok(
      two.changedChunks > 0 && two.changedChunks <= 8,
      `${two.changedChunks} chunks differ`,
    );
    const out = await bootAndWatch(second, 'bios', /FERRY-BOOT-TWO[^\n]*\n/, dir);
    assert.match(out, new RegExp(`root=UUID=${two.rootUuid}`));
  });

  it('boots the busybox revision from an MBR disk with SeaBIOS', async () => {
    const disk = join(dir, 'busybox-mbr.img');
    const r = await renderDisk(store, busybox.revision, busybox.manifest, {
      out: disk,
      table: 'mbr',
    });
    assert.equal(r.firmware, 'bios');
    const { stdout } = await run('sfdisk', ['--json', disk]);
    const t = JSON.parse(stdout) as {
      partitiontable: {
        label: string;
        partitions: { start: number; type: string; bootable?: boolean }[];
      };
    };
    assert.equal(t.partitiontable.label, 'dos');
    assert.equal(t.partitiontable.partitions[0]!.start, 2048);
    const out = await bootAndWatch(disk, 'bios', /FERRY-BOOT-OK[^\n]*\n/, dir);
    assert.match(out, new RegExp(`root=UUID=${r.rootUuid}`));
  });

  for (const table of ['mbr', 'gpt'] as const)
    it(`boots the busybox revision with EXTLINUX from ${table === 'mbr' ? 'an MBR disk with SeaBIOS' : 'a GPT disk with SeaBIOS and (syslinux.efi) OVMF'}`, {
      skip:
        table === 'gpt' && !existsSync('/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi')
          ? 'syslinux-efi not installed'
          : false,
    }, async () => {
      const disk = join(dir, `busybox-extlinux-${table}.img`);
      const r = await renderDisk(store, busybox.revision, busybox.manifest, {
        out: disk,
        table,
        boot: 'extlinux',
        ...(table === 'gpt' ? { firmware: 'both' as const } : {}),
      });
      assert.equal(r.firmware, table === 'gpt' ? 'both' : 'bios');
      for (const firmware of table === 'gpt' ? (['bios', 'uefi'] as const) : (['bios'] as const)) {
        const out = await bootAndWatch(disk, firmware, /FERRY-BOOT-OK[^\n]*\n/, dir);
        if (firmware === 'bios') assert.match(out, /SYSLINUX 6\.\d+/, 'EXTLINUX loaded the kernel');
        const line = /FERRY-BOOT-OK cmdline=\[([^\]]*)\] root=(\S+)/.exec(out)!;
        assert.ok(line[1]!.includes(`root=UUID=${r.rootUuid}`), `${firmware}: ${line[1]}`);
        const image = firmware === 'bios' ? `/${r.kernel}` : '/EFI/BOOT/VMLINUZ';
        assert.ok(line[1]!.includes(`BOOT_IMAGE=${image}`), `${firmware}: ${line[1]}`);
        assert.equal(line[2], 'ext2/ext3');
      }
    });

  it('boots the Debian revision with SeaBIOS and with OVMF to systemd', async () => {
    const disk = join(dir, 'debian.img');
    await renderDisk(store, debian.revision, debian.manifest, { out: disk });
    for (const firmware of ['bios', 'uefi'] as const) {
      const out = await bootAndWatch(disk, firmware, /Welcome to .*Debian GNU\/Linux 12/, dir);
      assert.match(out, /EXT4-fs \(vda3\): mounted filesystem/);
    }
  });

  it('boots the Debian revision from an XFS root with SeaBIOS to systemd', async () => {
    const disk = join(dir, 'debian-xfs.img');
    const r = await renderDisk(store, debian.revision, debian.manifest, { out: disk, fs: 'xfs' });
    assert.equal(r.fs, 'xfs');
    const out = await bootAndWatch(disk, 'bios', /Welcome to .*Debian GNU\/Linux 12/, dir);
    assert.match(out, /XFS \(vda3\): Ending clean mount/);
    assert.doesNotMatch(out, /XFS \(vda3\):.*(corrupt|ENOSPC|failed)/i);
  });

  it('renders the Debian revision as a filesystem that reads back as the revision, xattrs and ACLs included', async () => {
    const img = join(dir, 'debian.ext4');
    const r = await renderFilesystem(store, debian.revision, debian.manifest, {
      out: img,
      kernelOut: join(dir, 'debian.kernel'),
      initrdOut: join(dir, 'debian.initrd'),
    });
    await run('e2fsck', ['-fn', img]);
    const back = await ingestImage(store, img);
    const m = await store.getManifest(back.revision);
    const strip = (x: Manifest) =>
      x.entries.filter((e) => e.path !== 'lost+found').map((e) => JSON.stringify(e));
    assert.deepEqual(strip(m), strip(debian.manifest));
    assert.ok(
      debian.manifest.entries.some((e) => e.xattrs !== undefined),
      'the Debian tree has extended attributes to compare',
    );
    const boot = findBootFiles(debian.manifest)!;
    assert.equal((await stat(join(dir, 'debian.kernel'))).size, boot.kernel.size);
    assert.equal((await stat(join(dir, 'debian.initrd'))).size, boot.initrd!.size);
    assert.equal(r.kernel?.version, boot.version);
  });
});
