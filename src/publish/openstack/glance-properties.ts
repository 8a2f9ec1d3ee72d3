/**
 * The properties ferry puts on a Glance image: its own (stream, revision,
 * content hash, version, run), so a re-run finds what it made, and what
 * Nova's scheduler and drivers read, from inspect (os_distro, os_version,
 * architecture, hw_disk_bus, hw_firmware_type). Names follow Glance's
 * "useful image properties"; values are what inspect saw, never guesses.
 */

import type { InspectReport } from '../../inspect/index.js';

/** ferry's own properties (Glance property names cannot hold ':'; AWS's tags can). */
export const GLANCE_PROPERTY = {
  stream: 'ferry_stream',
  /** The ferry.yaml target: two targets may share one Glance (say qcow2 and raw). */
  target: 'ferry_target',
  revision: 'ferry_revision',
  contentHash: 'ferry_content_hash',
  version: 'ferry_version',
  run: 'ferry_run',
  /** kernel, ramdisk or root: the part of an AMI/AKI/ARI triple (root for a disk). */
  role: 'ferry_role',
} as const;

/** The os_distro values of Glance's documented list, by what inspect's os-release ID says. */
const DISTRO: Readonly<Record<string, string>> = {
  debian: 'debian',
  ubuntu: 'ubuntu',
  fedora: 'fedora',
  centos: 'centos',
  rhel: 'rhel',
  rocky: 'rocky',
  almalinux: 'almalinux',
  opensuse: 'opensuse',
  'opensuse-leap': 'opensuse',
  sles: 'sles',
  arch: 'arch',
  alpine: 'alpine',
  gentoo: 'gentoo',
  freebsd: 'freebsd',
  windows: 'windows',
};

const ARCH: Readonly<Record<string, string>> = {
  x86_64: 'x86_64',
  amd64: 'x86_64',
  aarch64: 'aarch64',
  arm64: 'aarch64',
  i386: 'i686',
  i686: 'i686',
  ppc64le: 'ppc64le',
  s390x: 's390x',
};

/** Nova's properties from the inspect report (absent ones are left to the cloud's defaults). */
export function inspectProperties(report: InspectReport | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (report === null) return out;
  const os = report.os;
  const id = os?.type === 'windows' ? 'windows' : (os?.distro ?? '').toLowerCase();
  const distro = DISTRO[id];
  if (distro !== undefined) out.os_distro = distro;
  if (
    os?.version !== null &&
    os?.version !== undefined &&
    /^[0-9A-Za-z._-]{1,32}$/.test(os.version)
  )
    out.os_version = os.version;
  if (os?.type !== undefined) out.os_type = os.type;
  const kernel = report.kernels.find((k) => k.default) ?? report.kernels[0];
  const arch = ARCH[os?.arch ?? kernel?.arch ?? ''];
  if (arch !== undefined) out.architecture = arch;
  if (kernel !== undefined) {
    const d = kernel.drivers;
    const has = (s: string) => s === 'builtin' || s === 'module';
    // virtio-blk is what Nova gives by default; say scsi only when only virtio-scsi is there.
    if (has(d.virtio_blk)) out.hw_disk_bus = 'virtio';
    else if (has(d.virtio_scsi)) {
      out.hw_disk_bus = 'scsi';
      out.hw_scsi_model = 'virtio-scsi';
    }
  }
  const fw = report.bootloader.firmware;
  if (fw.includes('uefi') && !fw.includes('bios')) out.hw_firmware_type = 'uefi';
  else if (fw.includes('bios')) out.hw_firmware_type = 'bios';
  return out;
}
