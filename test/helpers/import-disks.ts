/**
 * Small disks for VM Import tests: a Debian-like MBR disk (mke2fs -d and
 * sfdisk, as the inspect tests make them) that inspect judges importable,
 * and its broken variants. Its first stage is a few bytes of real-mode code
 * of ferry's tests, not GRUB: it writes one line to COM1 and halts, so a
 * QEMU boot of the imported snapshot shows (or, for the variant that never
 * boots, never shows) what a guest reaching userspace prints. It carries
 * GRUB's first-stage messages so inspect names the boot code grub2, as it
 * would for a disk with GRUB's boot.img.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const haveDiskTools =
  spawnSync('sh', ['-c', 'command -v mke2fs && command -v sfdisk']).status === 0;
export const haveQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0;
/** What makeUefiDisk needs besides mke2fs and sfdisk. */
export const haveUefiTools =
  spawnSync('sh', [
    '-c',
    'command -v grub-mkimage && command -v mkfs.vfat && command -v mcopy && test -d /usr/lib/grub/x86_64-efi && test -r /usr/share/OVMF/OVMF_CODE_4M.fd',
  ]).status === 0;

export const KVER = '6.1.0-18-cloud-amd64';
const UUID = '11111111-2222-3333-4444-555555555555';
export const DISK_BYTES = 24 * 1024 * 1024;

/** A fake bzImage header: version string and the 64-bit flag (what inspect reads). */
function bzImage(version: string): Buffer {
  const b = Buffer.alloc(0x1000);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x020f, 0x206);
  b.writeUInt16LE(0x600, 0x20e);
  b.write(`${version} (debian-kernel@lists.debian.org) #1 SMP\0`, 0x800, 'latin1');
  b.writeUInt16LE(1, 0x236);
  return b;
}

/**
 * 440 bytes of MBR boot code:
 *   cli; xor ax,ax; mov ds,ax; mov si,msg; mov dx,0x3f8
 *   next: lodsb; test al,al; jz halt; out dx,al; jmp next
 *   halt: hlt; jmp halt
 *   msg:  the line, NUL, then GRUB's first-stage messages (data only).
 */
export function serialBootCode(line: string): Buffer {
  const code = Buffer.from('fa31c08ed8be167cbaf803ac84c07403eeebf8f4ebfd', 'hex');
  const msg = Buffer.from(`\r\n${line}\r\n\0`, 'latin1');
  const grub = Buffer.from('GRUB \0Geom\0Hard Disk\0Read\0 Error', 'latin1');
  const out = Buffer.alloc(440);
  Buffer.concat([code, msg, grub]).copy(out);
  if (code.length + msg.length + grub.length > 440) throw new Error('boot code too long');
  return out;
}

export interface DiskOptions {
  /** /etc/os-release present (without it inspect cannot tell the OS). */
  readonly osRelease?: boolean;
  /** What the boot code prints on COM1. */
  readonly bootLine?: string;
  /** Bytes of incompressible data in /var/filler (which inspect never reads). */
  readonly filler?: number;
  /** The kernel release installed (default KVER, which VM Import supports for Debian 12). */
  readonly kernel?: string;
}

/** The Debian 12-like tree of every test disk, as an ext4 image of 16 MiB. */
async function makeRootFs(dir: string, opts: DiskOptions): Promise<string> {
  const root = join(dir, 'root');
  const kver = opts.kernel ?? KVER;
  for (const d of ['etc', 'boot/grub', 'usr/bin', `lib/modules/${kver}/kernel/drivers/block`])
    await mkdir(join(root, d), { recursive: true });
  if (opts.osRelease !== false)
    await writeFile(
      join(root, 'etc/os-release'),
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    );
  await writeFile(join(root, 'etc/fstab'), `UUID=${UUID} / ext4 defaults 0 1\n`);
  await writeFile(
    join(root, 'boot/grub/grub.cfg'),
    `linux /boot/vmlinuz-${kver} root=UUID=${UUID} ro console=ttyS0\n`,
  );
  await writeFile(join(root, `boot/vmlinuz-${kver}`), bzImage(kver));
  await writeFile(join(root, `boot/initrd.img-${kver}`), 'initrd');
  await writeFile(
    join(root, `lib/modules/${kver}/modules.builtin`),
    'kernel/drivers/nvme/host/nvme.ko\n',
  );
  await writeFile(join(root, `lib/modules/${kver}/kernel/drivers/block/virtio_blk.ko`), 'ko');
  await writeFile(join(root, 'usr/bin/cloud-init'), '#!/bin/sh\n');
  if (opts.filler !== undefined) {
    await mkdir(join(root, 'var'), { recursive: true });
    await writeFile(join(root, 'var/filler'), randomBytes(opts.filler));
  }
  const fs = join(dir, 'fs.img');
  execFileSync(
    'mke2fs',
    ['-q', '-t', 'ext4', '-U', UUID, '-L', 'root', '-d', root, '-F', fs, '16M'],
    { stdio: 'ignore' },
  );
  return fs;
}

async function blankDisk(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
}

function place(image: string, disk: string, sector: number): void {
  execFileSync('dd', [
    `if=${image}`,
    `of=${disk}`,
    'bs=512',
    `seek=${sector}`,
    'conv=notrunc',
    'status=none',
  ]);
}

/** A Debian 12-like root on MBR partition 1 (ext4) with a supported kernel. */
export async function makeDebianDisk(dir: string, opts: DiskOptions = {}): Promise<string> {
  const fs = await makeRootFs(dir, opts);
  const disk = join(dir, 'disk.img');
  await blankDisk(disk, DISK_BYTES);
  execFileSync('sfdisk', ['-q', disk], { input: 'start=2048, type=83, bootable\n' });
  place(fs, disk, 2048);
  const mbr = await open(disk, 'r+');
  try {
    await mbr.write(
      serialBootCode(opts.bootLine ?? 'Reached target Multi-User System.'),
      0,
      440,
      0,
    );
  } finally {
    await mbr.close();
  }
  return disk;
}

/**
 * The same root on a GPT disk that boots only through UEFI: an EFI system
 * partition whose fallback loader \\EFI\\BOOT\\BOOTX64.EFI is a GRUB image
 * (grub-mkimage) with a built-in configuration that prints `line` on the
 * serial console and waits, and no BIOS boot code.
 */
export async function makeUefiDisk(
  dir: string,
  line = 'Reached target UEFI test.',
): Promise<string> {
  const fs = await makeRootFs(dir, {});
  const cfg = join(dir, 'embedded.cfg');
  await writeFile(
    cfg,
    `serial --unit=0 --speed=115200\nterminal_output serial console\necho "${line}"\nsleep 3600\n`,
  );
  const efi = join(dir, 'BOOTX64.EFI');
  execFileSync('grub-mkimage', [
    '-O',
    'x86_64-efi',
    '-o',
    efi,
    '-p',
    '/EFI/BOOT',
    '-c',
    cfg,
    'serial',
    'terminal',
    'echo',
    'sleep',
  ]);
  const esp = join(dir, 'esp.img');
  await blankDisk(esp, 8 * 1024 * 1024);
  execFileSync('mkfs.vfat', [esp], { stdio: 'ignore' });
  execFileSync('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT']);
  execFileSync('mcopy', ['-i', esp, efi, '::/EFI/BOOT/BOOTX64.EFI']);
  const disk = join(dir, 'uefi.img');
  await blankDisk(disk, 28 * 1024 * 1024);
  execFileSync('sfdisk', ['-q', disk], {
    input:
      'label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=18432, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n',
  });
  place(esp, disk, 2048);
  place(fs, disk, 18432);
  return disk;
}

/** An all-zero disk: no partition table, no filesystem. */
export async function makeEmptyDisk(path: string, size = 8 * 1024 * 1024): Promise<string> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
  return path;
}

/**
 * Breaks the compressed data of one incompressible grain of a
 * streamOptimized VMDK (a grain of /var/filler, which validation never
 * reads), walking the markers from the header's overhead: a grain is LBA
 * (8 bytes), compressed size (4) and the data; a metadata marker is its
 * sector count, size 0 and a type, then those sectors.
 */
export function breakFillerGrain(vmdk: Buffer): void {
  let at = Number(vmdk.readBigUInt64LE(64)) * 512; // overHead, in sectors
  for (;;) {
    if (at + 16 > vmdk.length) throw new Error('no incompressible grain found');
    const size = vmdk.readUInt32LE(at + 8);
    if (size === 0) {
      // A metadata marker (grain table, directory, footer): its sectors follow; type 0 ends the stream.
      if (vmdk.readUInt32LE(at + 12) === 0) throw new Error('no incompressible grain found');
      at += 512 + Number(vmdk.readBigUInt64LE(at)) * 512;
      continue;
    }
    if (size > 60_000) {
      const mid = at + 12 + (size >> 1);
      for (let i = 0; i < 64; i++) vmdk[mid + i] = (vmdk[mid + i] ?? 0) ^ 0xa5;
      return;
    }
    at += Math.ceil((12 + size) / 512) * 512;
  }
}
