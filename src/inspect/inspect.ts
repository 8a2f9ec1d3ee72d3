import type { DiskImage } from '../disk/index.js';
import { isFerryError } from '../errors/index.js';
import { type BootConfig, readBootConfig } from './boot/boot-config.js';
import { type Finding, finding, TARGETS, type Target, verdicts } from './findings.js';
import { openExt } from './fs/ext/index.js';
import type { FsDriver, FsType } from './fs/fs-driver.js';
import { FsTree } from './fs/fs-tree.js';
import { openNtfs } from './fs/ntfs/index.js';
import { openVfat } from './fs/vfat/index.js';
import { openXfs } from './fs/xfs/index.js';
import { findKernels, type KernelFacts } from './kernel/kernels.js';
import { type DiskLayout, readLayout } from './layout.js';
import { type FstabEntry, isBlockFilesystem, parseFstab } from './os/fstab.js';
import { type LinuxRelease, readLinuxRelease } from './os/linux-release.js';
import type {
  BootloaderType,
  FilesystemReport,
  InspectReport,
  KernelReport,
  OsReport,
} from './report.js';
import { linuxFindings, windowsFindings } from './rules.js';
import { ReadCounter, type Volume, volumeOf } from './volume.js';
import { readWindows, type WindowsFacts } from './windows/windows.js';

export interface InspectOptions {
  /** Targets to judge (default: all). */
  readonly targets?: readonly Target[];
  readonly signal?: AbortSignal;
}

/** A filesystem found on the disk, opened for reading when ferry can. */
export interface MountedFs {
  readonly report: FilesystemReport;
  readonly volume: Volume;
  readonly tree: FsTree | null;
  readonly partType: string | null;
}

const OPENERS: Partial<Record<FsType, (v: Volume) => Promise<FsDriver<unknown> | null>>> = {
  ext2: openExt,
  ext3: openExt,
  ext4: openExt,
  xfs: openXfs,
  vfat: openVfat,
  ntfs: openNtfs,
};

/** Compares kernel releases numerically part by part ("6.1.0-18" > "6.1.0-9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[^0-9]+/).filter((x) => x !== '');
  const pb = b.split(/[^0-9]+/).filter((x) => x !== '');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = Number(pa[i] ?? -1) - Number(pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return a.localeCompare(b);
}

async function openFilesystems(layout: DiskLayout, findings: Finding[]): Promise<MountedFs[]> {
  const out: MountedFs[] = [];
  for (const v of layout.volumes) {
    if (v.probe === null) continue;
    const opener = OPENERS[v.probe.type];
    let tree: FsTree | null = null;
    if (opener !== undefined) {
      try {
        const d = await opener(v.volume);
        tree = d === null ? null : new FsTree(d);
      } catch (error) {
        if (!isFerryError(error)) throw error;
        findings.push(
          finding(
            'FS_UNREADABLE',
            `The ${v.probe.type} filesystem on ${where(v.partition)} cannot be read: ${error.message} [${error.code}]`,
          ),
        );
      }
    } else if (v.probe.type !== 'swap') {
      findings.push(
        finding(
          v.probe.type === 'luks' ? 'ENCRYPTED_VOLUME' : 'FS_UNREADABLE',
          `${where(v.partition)} holds ${v.probe.type}, which ferry detects but does not look inside`,
        ),
      );
    }
    out.push({
      report: {
        partition: v.partition,
        type: v.probe.type,
        uuid: v.probe.uuid,
        label: v.probe.label,
        size: v.probe.size,
        readable: tree !== null,
      },
      volume: v.volume,
      tree,
      partType: v.partType,
    });
  }
  return out;
}

function where(partition: number | null): string {
  return partition === null ? 'the whole disk' : `partition ${partition}`;
}

/** A Linux root: /etc plus a userland. */
async function isLinuxRoot(fs: FsTree): Promise<boolean> {
  const etc = await fs.stat('/etc').catch(() => null);
  if (etc?.kind !== 'dir') return false;
  for (const p of ['/bin', '/usr/bin', '/sbin', '/usr/sbin', '/etc/fstab', '/etc/os-release']) {
    if (await fs.exists(p).catch(() => false)) return true;
  }
  return false;
}

interface Roots {
  linux: Array<{ fs: MountedFs; release: LinuxRelease | null }>;
  windows: Array<{ fs: MountedFs; facts: WindowsFacts }>;
}

async function findRoots(mounted: MountedFs[], findings: Finding[]): Promise<Roots> {
  const roots: Roots = { linux: [], windows: [] };
  for (const m of mounted) {
    if (m.tree === null) continue;
    try {
      if (m.report.type === 'ntfs') {
        const w = await readWindows(m.tree);
        if (w !== null) roots.windows.push({ fs: m, facts: w });
      } else if (await isLinuxRoot(m.tree)) {
        roots.linux.push({ fs: m, release: await readLinuxRelease(m.tree) });
      }
    } catch (error) {
      if (!isFerryError(error)) throw error;
      findings.push(
        finding(
          'FS_UNREADABLE',
          `Reading ${where(m.report.partition)} failed: ${error.message} [${error.code}]`,
        ),
      );
    }
  }
  return roots;
}

function resolveFstab(
  entries: FstabEntry[],
  mounted: MountedFs[],
  layout: DiskLayout,
): Map<FstabEntry, MountedFs | null> {
  const out = new Map<FstabEntry, MountedFs | null>();
  for (const e of entries) {
    if (!isBlockFilesystem(e.type) || e.type === 'swap') continue;
    let m: MountedFs | undefined;
    if (e.kind === 'uuid')
      m = mounted.find((x) => x.report.uuid?.toLowerCase() === e.value.toLowerCase());
    else if (e.kind === 'label') m = mounted.find((x) => x.report.label === e.value);
    else if (e.kind === 'partuuid') {
      const p = layout.volumes.find((v) => v.partUuid?.toLowerCase() === e.value.toLowerCase());
      m = mounted.find((x) => p !== undefined && x.report.partition === p.partition);
    } else if (e.kind === 'device') {
      const n = Number(e.value.match(/(\d+)$/)?.[1] ?? Number.NaN);
      m = mounted.find((x) => x.report.partition === n);
    }
    out.set(e, m ?? null);
  }
  return out;
}

/** A Linux root filesystem and the filesystems its fstab mounts, for reading the whole tree. */
export interface LinuxTrees {
  readonly root: FsTree;
  /** Mount point (absolute) and tree, in fstab order; only filesystems found on the disk. */
  readonly mounts: ReadonlyArray<{ readonly mountPoint: string; readonly tree: FsTree }>;
}

/**
 * Opens the Linux root of a disk image and what its fstab mounts, or null
 * when there is no single Linux root (none, or several).
 */
export async function openLinuxTrees(image: DiskImage): Promise<LinuxTrees | null> {
  const findings: Finding[] = [];
  const disk = volumeOf(image, 0, image.virtualSize, new ReadCounter());
  const layout = await readLayout(disk, findings);
  const mounted = await openFilesystems(layout, findings);
  const roots = await findRoots(mounted, findings);
  const linux = roots.linux[0];
  if (linux === undefined || roots.linux.length > 1 || linux.fs.tree === null) return null;
  const fstabText = await linux.fs.tree.readText('/etc/fstab', 256 * 1024).catch(() => null);
  const entries = fstabText === null ? [] : parseFstab(fstabText);
  const resolved = resolveFstab(entries, mounted, layout);
  const mounts: Array<{ mountPoint: string; tree: FsTree }> = [];
  for (const e of entries) {
    const m = resolved.get(e);
    if (m?.tree == null || m === linux.fs || e.mountPoint === '/') continue;
    mounts.push({ mountPoint: e.mountPoint, tree: m.tree });
  }
  return { root: linux.fs.tree, mounts };
}

/**
 * Inspects a disk image from its bytes alone: partition table, filesystems,
 * OS, kernels, bootloader and configuration, and what each target cloud will
 * make of it. Reads only the blocks it needs through the image's reader.
 */
export async function inspectImage(
  image: DiskImage,
  path: string,
  options: InspectOptions = {},
): Promise<InspectReport> {
  const started = performance.now();
  const counter = new ReadCounter();
  const targets = options.targets ?? TARGETS;
  const findings: Finding[] = [];
  const disk = volumeOf(image, 0, image.virtualSize, counter);
  const layout = await readLayout(disk, findings);
  const mounted = await openFilesystems(layout, findings);
  const roots = await findRoots(mounted, findings);

  let os: OsReport | null = null;
  let kernels: KernelFacts[] = [];
  let boot: BootConfig | null = null;
  let fstab: InspectReport['fstab'] = [];
  let cloudInit = false;
  let serial = false;
  const esp = mounted.find(
    (m) =>
      m.report.type === 'vfat' &&
      m.tree !== null &&
      (m.partType === 'efi-system' || m.partType === '0xef'),
  );
  const espAny = esp ?? mounted.find((m) => m.report.type === 'vfat' && m.tree !== null);
  const uefiFallback = espAny?.tree ? await espAny.tree.exists('/EFI/BOOT/BOOTX64.EFI') : false;
  const uefiLoaders = espAny?.tree
    ? ((await espAny.tree.readDir('/EFI', 64).catch(() => null)) ?? []).length > 0
    : false;

  const linux = roots.linux[0];
  const windows = roots.windows[0];
  if (roots.linux.length + roots.windows.length > 1) {
    findings.push(
      finding(
        'MULTIPLE_OS',
        `${roots.linux.length + roots.windows.length} operating system roots were found (dual boot is not supported by VM Import)`,
      ),
    );
  }
  if (linux !== undefined) {
    const rootTree = linux.fs.tree!;
    const fstabText = await rootTree.readText('/etc/fstab', 256 * 1024).catch(() => null);
    const entries = fstabText === null ? [] : parseFstab(fstabText);
    const resolved = resolveFstab(entries, mounted, layout);
    fstab = entries.map((e) => ({
      spec: e.spec,
      mountPoint: e.mountPoint,
      type: e.type,
      resolved: resolved.get(e) !== null,
    }));
    // A separate /boot holds the kernels and the bootloader configuration.
    const bootEntry = entries.find((e) => e.mountPoint === '/boot');
    const bootFs = bootEntry === undefined ? null : (resolved.get(bootEntry) ?? null);
    const bootTree = bootFs?.tree ?? null;
    kernels =
      bootTree !== null
        ? await findKernels(bootTree, '/', rootTree)
        : await findKernels(rootTree, '/boot', rootTree);
    boot =
      bootTree !== null ? await readBootConfig(bootTree, '/boot') : await readBootConfig(rootTree);
    if (bootTree !== null) {
      const fromRoot = await readBootConfig(rootTree);
      serial = fromRoot.serialConsole;
    }
    serial ||= boot.serialConsole;
    serial ||= await rootTree
      .exists('/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service')
      .catch(() => false);
    cloudInit =
      (await rootTree.exists('/usr/bin/cloud-init').catch(() => false)) ||
      (await rootTree.exists('/etc/cloud/cloud.cfg').catch(() => false));
    const sorted = [...kernels].sort((a, b) => compareVersions(b.version, a.version));
    kernels = sorted;
    os = {
      type: 'linux',
      distro: linux.release?.distro ?? null,
      version: linux.release?.version ?? null,
      prettyName: linux.release?.prettyName ?? null,
      root: {
        partition: linux.fs.report.partition,
        type: linux.fs.report.type,
        uuid: linux.fs.report.uuid,
      },
      arch: sorted[0]?.arch ?? null,
    };
    findings.push(
      ...linuxFindings({
        release: linux.release,
        kernels: sorted,
        boot,
        fstabPresent: fstabText !== null,
        fstab: entries,
        resolved,
        layout,
        rootPartition: linux.fs.report.partition,
        cloudInit,
        serial,
        uefiFallback,
        uefiLoaders,
      }),
    );
  } else if (windows !== undefined) {
    const f = windows.facts;
    os = {
      type: 'windows',
      distro: 'windows',
      version: f.version,
      prettyName: f.productName,
      root: {
        partition: windows.fs.report.partition,
        type: windows.fs.report.type,
        uuid: windows.fs.report.uuid,
      },
      arch: f.arch,
      build: f.build,
      edition: f.edition,
    };
    findings.push(...windowsFindings(f, layout, uefiFallback, uefiLoaders));
  } else {
    const empty = layout.table.type === 'none' && layout.volumes.every((v) => v.probe === null);
    findings.push(
      empty
        ? finding('DISK_EMPTY', 'The disk has no partition table and no filesystem')
        : finding(
            'NO_OS',
            'No operating system root was found (no Linux /etc with a userland, no Windows\\System32 with its hives)',
          ),
    );
  }
  findings.push(...formatFindings(image));

  let bootloader: BootloaderType = 'none';
  if (windows !== undefined && linux === undefined) bootloader = 'windows';
  else if (boot?.grubVersion === 'grub2') bootloader = 'grub2';
  else if (boot?.grubVersion === 'grub-legacy') bootloader = 'grub-legacy';
  else if (boot?.extlinuxConfig) bootloader = 'extlinux';
  else if (boot?.syslinuxConfig) bootloader = 'syslinux';
  const firmware: Array<'bios' | 'uefi'> = [];
  if (layout.bootCode !== 'none' && layout.bootCode !== 'unknown') firmware.push('bios');
  else if (layout.table.type === 'none' && bootloader === 'extlinux') firmware.push('bios');
  if (uefiLoaders) firmware.push('uefi');

  const order = { error: 0, warning: 1, info: 2 } as const;
  const selected = findings
    .filter((f) => f.targets.some((t) => targets.includes(t)))
    .sort((a, b) => order[a.severity] - order[b.severity]);
  const kernelReports: KernelReport[] = kernels.map((k, i) => ({
    path: k.path,
    version: k.version,
    arch: k.arch,
    initrd: k.initrd,
    drivers: k.drivers,
    default: i === 0,
  }));
  return {
    image: path,
    format: image.format,
    virtualSize: image.virtualSize,
    partitionTable: {
      type: layout.table.type,
      partitions: layout.table.partitions.map((p) => ({
        index: p.index,
        start: p.start,
        size: p.size,
        type: p.type,
        bootable: p.bootable,
        filesystem: mounted.find((m) => m.report.partition === p.index)?.report.type ?? null,
      })),
    },
    filesystems: mounted.map((m) => m.report),
    os,
    kernels: kernelReports,
    bootloader: { type: bootloader, firmware },
    fstab,
    cloudInit,
    serialConsole: serial,
    findings: selected,
    verdicts: verdicts(selected, targets),
    bytesRead: counter.bytes,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Findings about the container format itself (what AWS says before looking inside). */
function formatFindings(image: DiskImage): Finding[] {
  const out: Finding[] = [];
  const d = image.details();
  if (image.format === 'vmdk' && d.createType !== 'streamOptimized') {
    out.push(
      finding(
        'VMDK_NOT_STREAM_OPTIMIZED',
        `The VMDK is ${String(d.createType)}; VM Import takes only streamOptimized VMDKs (ferry convert --to vmdk writes one)`,
      ),
    );
  }
  if (image.format === 'qcow2' || image.format === 'vdi') {
    out.push(
      finding(
        'FORMAT_NOT_IMPORTABLE',
        `VM Import does not take ${image.format} images; convert to vmdk, vhd, vhdx or raw first`,
      ),
    );
  }
  const TiB = 1024 ** 4;
  if (image.virtualSize >= 16 * TiB)
    out.push(
      finding('DISK_TOO_LARGE', 'The disk is 16 TiB or larger; VM Import takes disks under 16 TiB'),
    );
  else if (image.virtualSize >= 8 * TiB)
    out.push(
      finding('DISK_OVER_8TIB', 'The disk is over 8 TiB; ImportImage handles disks under 8 TiB'),
    );
  return out;
}
