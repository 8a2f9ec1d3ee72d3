import type { BootConfig } from './boot/boot-config.js';
import { type Finding, finding } from './findings.js';
import type { KernelFacts } from './kernel/kernels.js';
import type { DiskLayout } from './layout.js';
import type { FstabEntry } from './os/fstab.js';
import type { LinuxRelease } from './os/linux-release.js';
import { awsImportSupport } from './targets/aws-import-os.js';
import type { WindowsFacts } from './windows/windows.js';

export interface LinuxFacts {
  readonly release: LinuxRelease | null;
  /** Newest first. */
  readonly kernels: readonly KernelFacts[];
  readonly boot: BootConfig;
  readonly fstabPresent: boolean;
  readonly fstab: readonly FstabEntry[];
  readonly resolved: ReadonlyMap<FstabEntry, unknown>;
  readonly layout: DiskLayout;
  readonly rootPartition: number | null;
  readonly cloudInit: boolean;
  readonly serial: boolean;
  readonly uefiFallback: boolean;
  readonly uefiLoaders: boolean;
}

/** The rules a Linux image is judged by, per target. */
export function linuxFindings(f: LinuxFacts): Finding[] {
  const out: Finding[] = [];
  const k = f.kernels[0];
  if (f.release === null) {
    out.push(
      finding(
        'OS_UNKNOWN',
        'The root filesystem has no os-release, lsb-release or distribution release file',
      ),
    );
  }
  if (k === undefined) {
    out.push(finding('NO_KERNEL', 'No kernel image (/boot/vmlinuz-*) was found'));
  } else {
    if (k.arch === 'i386') {
      out.push(
        finding(
          'OS_ARCH_32BIT',
          `The kernel ${k.version} is 32-bit; VM Import takes 64-bit Linux only`,
          `ClientError: Unsupported kernel version ${k.version}`,
        ),
      );
    } else if (k.arch === 'aarch64') {
      out.push(
        finding(
          'OS_ARCH_ARM64',
          `The kernel ${k.version} is arm64; VM Import does not take ARM64 VMs`,
        ),
      );
    }
    if (f.release !== null) {
      const s = awsImportSupport(f.release.distro, f.release.version, k.version);
      if (s.status === 'unknown-os') {
        out.push(
          finding(
            'OS_UNKNOWN',
            `${f.release.prettyName ?? f.release.distro} is not an operating system VM Import supports`,
          ),
        );
      } else if (s.status === 'unsupported-version') {
        out.push(
          finding(
            'KERNEL_UNSUPPORTED',
            `${s.name} ${f.release.version ?? '(no version)'} is not a version VM Import supports`,
            `ClientError: Unsupported kernel version ${k.version}`,
          ),
        );
      } else if (s.status === 'unsupported-kernel') {
        out.push(
          finding(
            'KERNEL_UNSUPPORTED',
            `The default kernel ${k.version} is not one VM Import supports for ${s.name} ${f.release.version ?? ''} (expects ${s.expected.join(', ')})`,
            `ClientError: Unsupported kernel version ${k.version}`,
          ),
        );
      }
    }
    if (k.initrd === null) {
      out.push(finding('NO_INITRD', `The kernel ${k.version} has no initrd/initramfs beside it`));
    }
    const drv = k.drivers;
    const usable = (s: string) => s === 'builtin' || (s === 'module' && k.initrd !== null);
    if (drv.nvme !== 'unknown' && !usable(drv.nvme)) {
      out.push(
        finding(
          'MISSING_NVME',
          drv.nvme === 'module'
            ? `nvme is a module of ${k.version} but there is no initrd to load it: the root disk of a Nitro instance will not be found`
            : `The kernel ${k.version} has no nvme driver: Nitro instances present EBS volumes as NVMe`,
        ),
      );
    }
    if (drv.ena === 'missing')
      out.push(
        finding(
          'MISSING_ENA',
          `The kernel ${k.version} has no ena driver: Nitro instances have no network without it`,
        ),
      );
    if (drv.virtio_blk !== 'unknown' && !usable(drv.virtio_blk)) {
      out.push(
        finding(
          'MISSING_VIRTIO',
          drv.virtio_blk === 'module'
            ? `virtio_blk is a module of ${k.version} but there is no initrd to load it: a KVM guest panics looking for its root disk`
            : `The kernel ${k.version} has no virtio_blk driver`,
        ),
      );
    }
    if (drv.xen_blkfront === 'missing')
      out.push(
        finding(
          'MISSING_XEN_BLKFRONT',
          `The kernel ${k.version} has no xen-blkfront driver (needed only on Xen instance types)`,
        ),
      );
  }
  const grubCount = f.boot.grubConfigs.length;
  if (grubCount > 1) {
    out.push(
      finding(
        'MULTIPLE_GRUB_CONFIGS',
        `Several bootloader configurations were found: ${f.boot.grubConfigs.join(', ')}`,
      ),
    );
  }
  if (f.boot.grubUsesBls && f.boot.blsDefault === null && f.boot.blsEntries.length > 0) {
    out.push(
      finding(
        'BLS_NO_DEFAULT',
        'GRUB uses BootLoaderSpec entries and no saved_entry default is set in grubenv',
      ),
    );
  }
  const hasLoaderConfig =
    grubCount > 0 || f.boot.extlinuxConfig !== null || f.boot.syslinuxConfig !== null;
  const partitionless = f.layout.table.type === 'none';
  if (partitionless) {
    out.push(
      finding('NO_PARTITIONS', 'The filesystem fills the whole disk with no partition table'),
    );
    out.push(
      finding(
        'PARTITIONLESS_ROOT',
        'A partitionless root suits OpenStack as an AMI/AKI/ARI triple (kernel and ramdisk registered separately)',
      ),
    );
  }
  if (!hasLoaderConfig && !f.uefiLoaders) {
    if (!partitionless)
      out.push(
        finding(
          'NO_BOOTLOADER',
          'No GRUB, extlinux or syslinux configuration and no EFI loader was found',
        ),
      );
  } else if (
    grubCount === 0 &&
    (f.boot.extlinuxConfig !== null || f.boot.syslinuxConfig !== null)
  ) {
    out.push(
      finding(
        'BOOTLOADER_UNSUPPORTED',
        'The bootloader is extlinux/syslinux; VM Import requires GRUB legacy or GRUB 2',
      ),
    );
  }
  if (
    !partitionless &&
    hasLoaderConfig &&
    (f.layout.bootCode === 'none' || f.layout.bootCode === 'unknown') &&
    !f.uefiLoaders
  ) {
    out.push(
      finding(
        'BOOT_CODE_MISSING',
        'The MBR holds no boot code and there is no EFI loader: the disk cannot boot',
      ),
    );
  }
  if (
    f.uefiLoaders &&
    !f.uefiFallback &&
    (f.layout.bootCode === 'none' || f.layout.bootCode === 'unknown')
  ) {
    out.push(
      finding(
        'UEFI_NO_FALLBACK',
        'The EFI system partition has no fallback loader \\EFI\\BOOT\\BOOTX64.EFI',
      ),
    );
  }
  if (!f.fstabPresent) {
    out.push(finding('FSTAB_MISSING', '/etc/fstab is missing'));
  } else {
    const names = f.fstab.filter((e) => e.deviceName && e.type !== 'swap');
    if (names.length > 0) {
      out.push(
        finding(
          'FSTAB_DEVICE_NAMES',
          `/etc/fstab mounts by kernel device name (${names.map((e) => e.spec).join(', ')}); names differ between hypervisors, use UUID= or LABEL=`,
        ),
      );
    }
    const unresolved = [...f.resolved.entries()].filter(
      ([e, m]) => m === null && !/\bnofail\b/.test(e.options) && e.kind !== 'lvm',
    );
    if (unresolved.length > 0) {
      out.push(
        finding(
          'FSTAB_UNRESOLVED',
          `/etc/fstab names filesystems not on this disk: ${unresolved.map(([e]) => e.spec).join(', ')}`,
        ),
      );
    }
  }
  if (!f.cloudInit)
    out.push(
      finding(
        'NO_CLOUD_INIT',
        'cloud-init is not installed: SSH keys and hostnames will not be set at boot',
      ),
    );
  if (!f.serial)
    out.push(
      finding(
        'NO_SERIAL_CONSOLE',
        'No serial console is configured (console=ttyS0): the cloud console log will be empty',
      ),
    );
  return out;
}

/** Windows versions VM Import takes (by NT version). */
const WINDOWS_SUPPORTED = ['5.2', '6.0', '6.1', '6.2', '6.3', '10.0'];

export function windowsFindings(
  w: WindowsFacts,
  layout: DiskLayout,
  uefiFallback: boolean,
  uefiLoaders: boolean,
): Finding[] {
  const out: Finding[] = [];
  if (w.version === null || !WINDOWS_SUPPORTED.includes(w.version)) {
    out.push(
      finding(
        'WINDOWS_UNSUPPORTED_VERSION',
        `Windows ${w.version ?? '(unknown version)'} is not a version VM Import supports`,
      ),
    );
  }
  if (w.arch === 'aarch64')
    out.push(finding('OS_ARCH_ARM64', 'Windows on ARM64 is not supported by VM Import'));
  if (w.drivers.nvme === false)
    out.push(
      finding(
        'MISSING_NVME',
        'The stornvme driver is not installed: Nitro instances present EBS volumes as NVMe',
      ),
    );
  if (w.drivers.ena === false)
    out.push(
      finding(
        'MISSING_ENA',
        'The ENA driver is not installed: Nitro instances have no network without it',
      ),
    );
  if (w.drivers.virtio_blk === false && w.drivers.virtio_scsi === false) {
    out.push(
      finding(
        'MISSING_VIRTIO',
        'Neither viostor nor vioscsi (virtio-win) is installed: KVM guests cannot find their disk',
      ),
    );
  }
  if (
    uefiLoaders &&
    !uefiFallback &&
    (layout.bootCode === 'none' || layout.bootCode === 'unknown')
  ) {
    out.push(
      finding(
        'UEFI_NO_FALLBACK',
        'The EFI system partition has no fallback loader \\EFI\\BOOT\\BOOTX64.EFI',
      ),
    );
  }
  return out;
}
