import type { FsTree } from '../fs/fs-tree.js';
import { KERNEL_HEAD_BYTES, type KernelArch, parseKernelImage, releaseOf } from './kernel-image.js';

export interface DriverPresence {
  /** 'builtin' (modules.builtin), 'module' (a .ko file), or 'missing'. */
  readonly virtio_blk: DriverState;
  readonly virtio_net: DriverState;
  readonly virtio_scsi: DriverState;
  readonly nvme: DriverState;
  readonly ena: DriverState;
  readonly xen_blkfront: DriverState;
}
export type DriverState = 'builtin' | 'module' | 'missing' | 'unknown';
export type DriverName = keyof DriverPresence;

export interface KernelFacts {
  /** Path of the kernel image, as seen from the root (e.g. /boot/vmlinuz-6.1.0-18-amd64). */
  readonly path: string;
  /** `uname -r`: from the image header when present, else from the file name. */
  readonly version: string;
  readonly arch: KernelArch;
  /** The matching initrd/initramfs, or null. */
  readonly initrd: string | null;
  readonly drivers: DriverPresence;
}

/** Where each driver lives under /lib/modules/<version>/. */
const DRIVER_PATHS: Record<DriverName, string> = {
  virtio_blk: 'kernel/drivers/block/virtio_blk.ko',
  virtio_net: 'kernel/drivers/net/virtio_net.ko',
  virtio_scsi: 'kernel/drivers/scsi/virtio_scsi.ko',
  nvme: 'kernel/drivers/nvme/host/nvme.ko',
  ena: 'kernel/drivers/net/ethernet/amazon/ena/ena.ko',
  xen_blkfront: 'kernel/drivers/block/xen-blkfront.ko',
};
const MODULE_SUFFIXES = ['', '.xz', '.zst', '.gz'];
const MAX_KERNELS = 32;

function initrdCandidates(version: string): string[] {
  return [
    `initrd.img-${version}`,
    `initramfs-${version}.img`,
    `initrd-${version}`,
    `initrd-${version}.img`,
    `initramfs-${version}`,
  ];
}

async function driverState(
  root: FsTree,
  version: string,
  builtin: Set<string>,
  name: DriverName,
): Promise<DriverState> {
  const rel = DRIVER_PATHS[name];
  if (builtin.has(rel)) return 'builtin';
  for (const s of MODULE_SUFFIXES) {
    const st = await root.stat(`/lib/modules/${version}/${rel}${s}`).catch(() => null);
    if (st?.kind === 'file') return 'module';
  }
  return builtin.size > 0 || (await root.exists(`/lib/modules/${version}`)) ? 'missing' : 'unknown';
}

/**
 * Finds kernels in a boot directory: `boot` is the filesystem holding them and
 * `bootDir` their directory there ("/boot" on the root filesystem, "/" on a
 * separate /boot partition). Modules are looked up on `root`.
 */
export async function findKernels(
  boot: FsTree,
  bootDir: string,
  root: FsTree,
): Promise<KernelFacts[]> {
  const entries = (await boot.readDir(bootDir, 4096).catch(() => null)) ?? [];
  const names = entries.map((e) => e.name);
  const kernels: KernelFacts[] = [];
  const dirPrefix = bootDir === '/' ? '' : bootDir;
  const shown = (n: string) => `/boot/${n}`;
  for (const name of names
    .filter((n) => /^(vmlinuz|vmlinux|kernel|bzImage)-./.test(n))
    .sort()
    .slice(0, MAX_KERNELS)) {
    const path = `${dirPrefix}/${name}`;
    const st = await boot.stat(path).catch(() => null);
    if (st?.kind !== 'file') continue;
    const head =
      (await boot.readRange(path, 0, KERNEL_HEAD_BYTES).catch(() => null)) ?? Buffer.alloc(0);
    const facts = parseKernelImage(head);
    const fromName = name.replace(/^(vmlinuz|vmlinux|kernel|bzImage)-/, '');
    const version = releaseOf(facts.version) ?? fromName;
    const initrd = initrdCandidates(fromName).find((c) => names.includes(c)) ?? null;
    const builtinText =
      (await root
        .readText(`/lib/modules/${version}/modules.builtin`, 1024 * 1024)
        .catch(() => null)) ?? '';
    const builtin = new Set(
      builtinText
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== ''),
    );
    const drivers = {} as Record<DriverName, DriverState>;
    for (const d of Object.keys(DRIVER_PATHS) as DriverName[])
      drivers[d] = await driverState(root, version, builtin, d);
    let arch = facts.arch;
    if (arch === 'unknown' && /amd64|x86_64/.test(version)) arch = 'x86_64';
    if (arch === 'unknown' && /686|i386/.test(version)) arch = 'i386';
    kernels.push({
      path: shown(name),
      version,
      arch,
      initrd: initrd === null ? null : shown(initrd),
      drivers,
    });
  }
  return kernels;
}
