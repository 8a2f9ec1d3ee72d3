import type { WritableFormat } from '../disk/index.js';
import { FerryError } from '../errors/index.js';
import type { LocalStore, Manifest } from '../store/index.js';
import {
  extlinuxConfig,
  loadExtlinux,
  loadSyslinuxEfi,
  patchExtlinux,
  readExtlinuxInstall,
  unpatchedLdlinux,
} from './boot/extlinux.js';
import { grubBios, grubConfig, grubEfi } from './boot/grub.js';
import { findBootFiles } from './boot-files.js';
import { checkDiskMap, type DiskMap, type DiskMapPartition } from './disk/disk-map.js';
import {
  encodeGpt,
  encodeMbr,
  GPT_TYPES,
  guidBytes,
  type PartitionSpec,
  SECTOR,
} from './disk/partition-table.js';
import type { Run } from './ext4/extents.js';
import { derive, type FileRegion, uuidFrom } from './ext4/plan-ext4.js';
import { buildFat16, type FatFile } from './fat/fat16-writer.js';
import { loadBase } from './load-base.js';
import { planRootFs, type RenderFsType, type RootFsPlan, rootFsUuid } from './plan-root-fs.js';
import { formatUuid } from './render-fs.js';
import { editTree } from './tree-edits.js';
import { newestMtime } from './tree-time.js';
import { writeOptionsFor, writeRender } from './write-render.js';

export type Firmware = 'bios' | 'uefi' | 'both';

export interface RenderDiskOptions {
  readonly out: string;
  readonly format?: WritableFormat;
  /** The root filesystem (default ext4). */
  readonly fs?: RenderFsType;
  /** Disk size in bytes; absent ("auto"): the contents plus `margin`. */
  readonly size?: number;
  /** Free space "auto" leaves in the root filesystem, as a fraction of what it needs (default 0.25). */
  readonly margin?: number;
  readonly table?: 'gpt' | 'mbr';
  readonly firmware?: Firmware;
  /**
   * GRUB; EXTLINUX, installed into /boot/extlinux (BIOS; firmware defaults to
   * bios), with syslinux.efi and copies of the kernel and initrd on the ESP for
   * UEFI; or no boot loader.
   */
  readonly boot?: 'grub' | 'extlinux' | 'none';
  /** Kernel arguments after root=UUID=... (default: ro console=tty0 console=ttyS0,115200). */
  readonly kernelArgs?: string;
  readonly label?: string;
  /** A previous disk render (its map beside it), or that map alone (a path ending in .json). */
  readonly base?: string;
  readonly zeroFreed?: boolean;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface RenderDiskResult {
  readonly revision: string;
  readonly bytes: number;
  readonly fileSize: number;
  readonly map: string;
  readonly table: 'gpt' | 'mbr';
  readonly firmware: Firmware;
  readonly fs: RenderFsType;
  readonly rootUuid: string;
  readonly espId: string | null;
  readonly bootloader: 'grub' | 'extlinux' | null;
  readonly kernel: string | null;
  readonly dataChunks: number;
  readonly changedChunks: number;
  readonly totalChunks: number;
  readonly keptFiles: number;
}

const MIB_SECTORS = 2048;
const ESP_SECTORS = 64 * MIB_SECTORS;
const DEFAULT_ARGS = 'ro console=tty0 console=ttyS0,115200';
/** Where EXTLINUX is installed in the root filesystem (ldlinux.sys looks there for its files). */
const EXTLINUX_DIR = 'boot/extlinux';

function usage(reason: string): FerryError {
  return new FerryError('FERRY_USAGE', `Cannot render the disk: ${reason}`);
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** The partition layout for a root filesystem of `fsSectors` sectors (a BIOS boot partition for GRUB's core on GPT). */
function layout(
  table: 'gpt' | 'mbr',
  firmware: Firmware,
  fsSectors: number,
  biosBoot: boolean,
): { parts: Omit<DiskMapPartition, 'guid'>[]; totalSectors: number } {
  const parts: Omit<DiskMapPartition, 'guid'>[] = [];
  let at = MIB_SECTORS;
  if (table === 'gpt' && firmware !== 'uefi' && biosBoot) {
    parts.push({ role: 'bios-boot', firstLba: at, lastLba: at + MIB_SECTORS - 1 });
    at += MIB_SECTORS;
  }
  if (firmware !== 'bios') {
    parts.push({ role: 'esp', firstLba: at, lastLba: at + ESP_SECTORS - 1 });
    at += ESP_SECTORS;
  }
  parts.push({ role: 'root', firstLba: at, lastLba: at + fsSectors - 1 });
  // A mebibyte after the root for the backup GPT, and the whole disk in mebibytes.
  const totalSectors = alignUp(at + fsSectors + MIB_SECTORS, MIB_SECTORS);
  return { parts, totalSectors };
}

/** 4 KiB blocks of `data` placed at byte `offset` that hold anything, for the layout's metadata. */
function addBlocks(meta: Map<number, Buffer>, offset: number, data: Buffer): void {
  if (offset % 4096 !== 0)
    throw new FerryError('FERRY_INTERNAL', 'Cannot lay out the disk: an unaligned region');
  for (let at = 0; at < data.length; at += 4096) {
    const block = Buffer.alloc(4096);
    data.copy(block, 0, at, at + 4096);
    if (block.some((b) => b !== 0)) meta.set((offset + at) / 4096, block);
  }
}

/**
 * Renders a revision as a bootable disk: GPT (BIOS boot partition and/or
 * EFI system partition) or MBR, the root filesystem from the ext4 or XFS writer,
 * an /etc/fstab by UUID, and GRUB built with a configuration that finds the
 * root by UUID and boots the newest kernel, or EXTLINUX installed into
 * /boot/extlinux of the root filesystem (and syslinux.efi on the ESP for
 * UEFI). Deterministic like the
 * filesystem: disk and partition GUIDs derive from the revision id (or come
 * from the base, which keeps its identity).
 */
export async function renderDisk(
  store: LocalStore,
  revision: string,
  manifest: Manifest,
  options: RenderDiskOptions,
): Promise<RenderDiskResult> {
  const table = options.table ?? 'gpt';
  const bootWith = options.boot ?? 'grub';
  const firmware =
    options.firmware ?? (table === 'mbr' || bootWith === 'extlinux' ? 'bios' : 'both');
  if (table === 'mbr' && firmware !== 'bios')
    throw usage('an MBR disk boots with BIOS only; use --table gpt for UEFI');
  // GRUB's core goes in a BIOS boot partition; EXTLINUX lives in the root filesystem.
  const biosBoot = bootWith !== 'extlinux';
  const fs = options.fs ?? 'ext4';
  if (fs === 'xfs' && bootWith === 'extlinux')
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      'Cannot install EXTLINUX on XFS: ferry installs it into ext4 only (the XFS superblock holds the first sector)',
      { hint: 'Use --boot grub with --fs xfs' },
    );
  const base =
    options.base === undefined
      ? undefined
      : await loadBase(options.base, 'a disk', (raw) => {
          const map = checkDiskMap(raw, fs);
          return { map, bytes: map.totalSectors * SECTOR };
        });
  try {
    if (base !== undefined && (base.map.table !== table || base.map.firmware !== firmware))
      throw new FerryError(
        'FERRY_RENDER_INPUT',
        `Cannot use ${options.base} as a base: it has a ${base.map.table} table for ${base.map.firmware}, not ${table} for ${firmware}`,
      );
    const identity = base?.map.revision ?? revision;
    const rootUuid = formatUuid(rootFsUuid(fs, revision, base?.map.fs));
    const espVolume = derive('esp-id', identity).readUInt32LE(0);
    const espId =
      firmware === 'bios'
        ? null
        : `${(espVolume >>> 16).toString(16).padStart(4, '0')}-${(espVolume & 0xffff).toString(16).padStart(4, '0')}`.toUpperCase();

    const boot = findBootFiles(manifest);
    if (bootWith !== 'none' && boot === null)
      throw new FerryError(
        'FERRY_RENDER_INPUT',
        'Cannot make the disk bootable: the revision has no kernel under /boot',
        {
          hint: 'Install a kernel in the tree, or render with --boot none',
        },
      );
    const fstab = [
      '# Written by ferry build: filesystems by UUID.',
      fs === 'xfs'
        ? `UUID=${rootUuid} / xfs defaults 0 0`
        : `UUID=${rootUuid} / ext4 errors=remount-ro 0 1`,
      ...(espId === null ? [] : [`UUID=${espId} /boot/efi vfat umask=0077,nofail 0 1`]),
      '',
    ].join('\n');
    const cmdline = `root=UUID=${rootUuid} ${options.kernelArgs ?? DEFAULT_ARGS}`;
    // EXTLINUX for BIOS: its files go into the tree; ldlinux.sys is patched once its blocks are known.
    const extlinux = bootWith === 'extlinux' && firmware !== 'uefi' ? await loadExtlinux() : null;
    // For UEFI, syslinux.efi on the ESP, which boots copies of the kernel and initrd from there.
    const syslinuxEfi =
      bootWith === 'extlinux' && firmware !== 'bios' ? await loadSyslinuxEfi() : null;
    const bootTree =
      extlinux === null || boot === null
        ? []
        : [
            {
              path: `${EXTLINUX_DIR}/ldlinux.sys`,
              content: unpatchedLdlinux(extlinux),
              mode: 0o444,
            },
            { path: `${EXTLINUX_DIR}/ldlinux.c32`, content: extlinux.ldlinuxC32, mode: 0o444 },
            {
              path: `${EXTLINUX_DIR}/extlinux.conf`,
              content: extlinuxConfig({
                kernel: `/${boot.kernel.path}`,
                initrd: boot.initrd === null ? null : `/${boot.initrd.path}`,
                cmdline,
              }),
              mode: 0o644,
            },
          ];
    const tree = await editTree(
      store,
      manifest,
      [{ path: 'etc/fstab', content: fstab, mode: 0o644 }, ...bootTree],
      espId === null ? [] : ['boot/efi'],
    );

    // The root filesystem: the smallest plus the margin, or what the disk size leaves, or the base's.
    const fixedParts = layout(table, firmware, 0, biosBoot);
    const overhead = fixedParts.totalSectors;
    let fsBlocks: number;
    const min = planRootFs(fs, tree, {
      revision,
      ...(base === undefined ? {} : { base: base.map.fs }),
    }).blocksCount;
    if (options.size !== undefined) {
      fsBlocks = Math.floor((Math.floor(options.size / SECTOR) - overhead) / 8);
      if (fsBlocks < min)
        throw new FerryError(
          'FERRY_RENDER_LIMIT',
          `Cannot render the disk: ${options.size} bytes do not hold the tree (it needs ${(min * 8 + overhead) * SECTOR})`,
        );
    } else {
      fsBlocks = alignUp(Math.ceil(min * (1 + (options.margin ?? 0.25))), 256);
    }
    // The lineage keeps its disk size unless it no longer fits: the partitions stay where they are.
    if (base !== undefined && base.map.fs.blocksCount >= min) fsBlocks = base.map.fs.blocksCount;
    const plan = planRootFs(fs, tree, {
      revision,
      blocks: fsBlocks,
      ...(options.label === undefined ? {} : { label: options.label }),
      ...(base === undefined ? {} : { base: base.map.fs, writeKept: base.image === null }),
    });
    const { parts, totalSectors } = layout(table, firmware, fsBlocks * 8, biosBoot);
    const roleGuid = (role: string, i: number): string =>
      base?.map.partitions.find((p) => p.role === role)?.guid ??
      uuidFrom(derive(`partition-${i}-${role}`, identity)).toString('hex');
    const partitions: DiskMapPartition[] = parts.map((p, i) => ({
      ...p,
      guid: roleGuid(p.role, i),
    }));
    if (base !== undefined) {
      const same =
        base.map.partitions.length === partitions.length &&
        base.map.partitions.every(
          (p, i) => p.firstLba === partitions[i]!.firstLba && p.role === partitions[i]!.role,
        );
      if (!same)
        throw new FerryError(
          'FERRY_RENDER_INPUT',
          `Cannot use ${options.base} as a base: its partitions are laid out differently`,
        );
    }
    const diskGuid = base?.map.diskGuid ?? uuidFrom(derive('disk-guid', identity)).toString('hex');
    const root = partitions.find((p) => p.role === 'root')!;

    // Boot code.
    let mbrCode: Buffer | null = null;
    let core: Buffer | null = null;
    let efi: Buffer | null = null;
    if (bootWith === 'grub' && boot !== null) {
      const config = grubConfig({
        rootUuid,
        kernel: boot.kernel.path,
        initrd: boot.initrd?.path ?? null,
        cmdline,
      });
      if (firmware !== 'uefi') {
        const biosPart = partitions.find((p) => p.role === 'bios-boot');
        const coreLba = biosPart?.firstLba ?? 1;
        const room =
          biosPart === undefined ? root.firstLba - 1 : biosPart.lastLba - biosPart.firstLba + 1;
        ({ mbrCode, core } = await grubBios(config, coreLba, room, fs));
      }
      if (firmware !== 'bios') efi = await grubEfi(config, fs);
    }

    // Everything as 4 KiB blocks of the whole disk.
    const shift = root.firstLba / 8;
    const meta = new Map<number, Buffer>();
    for (const [b, data] of plan.meta) meta.set(b + shift, data);
    let planFiles = plan.files;
    if (extlinux !== null) {
      mbrCode = table === 'mbr' ? extlinux.mbr : extlinux.gptmbr;
      planFiles = installExtlinux(extlinux, plan, meta, shift, root);
    }
    const head = Buffer.alloc(MIB_SECTORS * SECTOR);
    const specs: PartitionSpec[] = partitions.map((p) => ({
      name:
        p.role === 'root'
          ? 'root'
          : p.role === 'esp'
            ? 'EFI system partition'
            : 'BIOS boot partition',
      type:
        p.role === 'root'
          ? GPT_TYPES.linuxRootX86_64
          : p.role === 'esp'
            ? GPT_TYPES.esp
            : GPT_TYPES.biosBoot,
      mbrType: 0x83,
      guid: guidBytes(formatUuid(Buffer.from(p.guid, 'hex'))),
      firstLba: p.firstLba,
      lastLba: p.lastLba,
      // gptmbr.bin boots the partition with the legacy BIOS bootable attribute.
      ...(p.role === 'root' && extlinux !== null ? { bootable: true } : {}),
    }));
    if (table === 'gpt') {
      const gpt = encodeGpt(
        totalSectors,
        guidBytes(formatUuid(Buffer.from(diskGuid, 'hex'))),
        specs,
        mbrCode,
      );
      gpt.primary.copy(head);
      // The backup tables end the disk; the disk is whole mebibytes, so pad them to a 4 KiB boundary in front.
      const start = totalSectors * SECTOR - gpt.backup.length;
      const pad = start % 4096;
      addBlocks(meta, start - pad, Buffer.concat([Buffer.alloc(pad), gpt.backup]));
    } else {
      encodeMbr(mbrCode, [[0x83, root.firstLba, root.lastLba - root.firstLba + 1, true]]).copy(
        head,
      );
      // The disk signature, derived like every other identity.
      head.writeUInt32LE(derive('mbr-signature', identity).readUInt32LE(0), 440);
    }
    const biosPart = partitions.find((p) => p.role === 'bios-boot');
    if (core !== null) {
      if (biosPart === undefined) core.copy(head, SECTOR);
      else addBlocks(meta, biosPart.firstLba * SECTOR, core);
    }
    addBlocks(meta, 0, head);
    const esp = partitions.find((p) => p.role === 'esp');
    if (esp !== undefined) {
      const files =
        syslinuxEfi !== null && boot !== null
          ? await syslinuxEspFiles(store, syslinuxEfi, boot, cmdline, options.signal)
          : efi === null
            ? []
            : [{ path: 'EFI/BOOT/BOOTX64.EFI', data: efi }];
      const fat = buildFat16(
        esp.lastLba - esp.firstLba + 1,
        files,
        espVolume,
        'EFI',
        Number(newestMtime(tree) / 1_000_000_000n),
        esp.firstLba,
      );
      addBlocks(meta, esp.firstLba * SECTOR, fat);
    }
    const files: FileRegion[] = planFiles.map((f) => ({ ...f, block: f.block + shift }));
    const freed: Run[] = plan.freed.map((r) => ({ ...r, physical: r.physical + shift }));
    const bytes = totalSectors * SECTOR;
    const map: DiskMap = {
      format: 'ferry-disk-map',
      version: 1,
      revision: identity,
      table,
      firmware,
      totalSectors,
      diskGuid,
      partitions,
      fs: plan.map,
    };
    const written = await writeRender(
      { blocksCount: bytes / 4096, meta, files, freed },
      map,
      writeOptionsFor((h) => store.objects.pathOf(h), options, base),
    );
    return {
      revision,
      bytes,
      fileSize: written.fileSize,
      map: written.map,
      table,
      firmware,
      fs,
      rootUuid,
      espId,
      bootloader: bootWith === 'none' || boot === null ? null : bootWith,
      kernel: bootWith !== 'none' && boot !== null ? boot.kernel.path : null,
      dataChunks: written.dataChunks,
      changedChunks: written.changedChunks,
      totalChunks: written.totalChunks,
      keptFiles: plan.keptFiles,
    };
  } finally {
    await base?.image?.close();
  }
}

/**
 * Installs EXTLINUX into a planned root filesystem: ldlinux.sys is patched
 * for the blocks the planner gave it and goes out as metadata blocks (its
 * store object stays the unpatched file, so a render over a base keeps it in
 * place), the boot sector goes into the filesystem's first 512 bytes (ext4
 * leaves 1024 free). Returns the file regions without ldlinux.sys's.
 */
function installExtlinux(
  extlinux: Awaited<ReturnType<typeof loadExtlinux>>,
  plan: RootFsPlan,
  meta: Map<number, Buffer>,
  shift: number,
  root: { firstLba: number; lastLba: number },
): FileRegion[] {
  if (plan.map.format !== 'ferry-ext4-map')
    throw new FerryError('FERRY_INTERNAL', 'Cannot install EXTLINUX: the root is not ext4');
  const node = plan.map.nodes[`${EXTLINUX_DIR}/ldlinux.sys`];
  if (node === undefined)
    throw new FerryError('FERRY_INTERNAL', 'Cannot install EXTLINUX: ldlinux.sys was not planned');
  const blocks = [...node.runs]
    .sort((a, b) => a.logical - b.logical)
    .flatMap((r) => Array.from({ length: r.length }, (_, i) => r.physical + i));
  const sectors = blocks.flatMap((b) => Array.from({ length: 8 }, (_, i) => b * 8 + i));
  const dir = `/${EXTLINUX_DIR}`;
  const patched = patchExtlinux(extlinux, {
    sectors,
    dir,
    partitionStart: root.firstLba,
    partitionSectors: root.lastLba - root.firstLba + 1,
  });
  // What the boot code will read back must be the file's own sectors.
  const check = readExtlinuxInstall(patched.ldlinux, patched.bootSector);
  const want = sectors.slice(0, patched.ldlinux.length / SECTOR);
  if (!check.checksumOk || check.sectors.join() !== want.join() || check.dir !== dir)
    throw new FerryError(
      'FERRY_INTERNAL',
      'Cannot install EXTLINUX: the patched ldlinux.sys does not read back',
    );
  blocks.forEach((b, i) => {
    const data = Buffer.alloc(4096);
    patched.ldlinux.copy(data, 0, i * 4096, (i + 1) * 4096);
    meta.set(b + shift, data);
  });
  const first = plan.meta.get(0);
  if (first === undefined)
    throw new FerryError(
      'FERRY_INTERNAL',
      'Cannot install EXTLINUX: the filesystem has no block 0',
    );
  const head = Buffer.from(first);
  patched.bootSector.copy(head, 0);
  meta.set(shift, head);
  const own = new Set(blocks);
  return plan.files.filter((f) => {
    const inside = own.has(f.block);
    if (inside && !own.has(f.block + f.blocks - 1))
      throw new FerryError(
        'FERRY_INTERNAL',
        'Cannot install EXTLINUX: a file region straddles ldlinux.sys',
      );
    return !inside;
  });
}

/**
 * The ESP for syslinux.efi: the loader, ldlinux.e64, its configuration, and
 * copies of the kernel and initrd (syslinux.efi reads only its own FAT
 * partition, so a kernel the guest installs later is not booted until the
 * next render).
 */
async function syslinuxEspFiles(
  store: LocalStore,
  efi: Awaited<ReturnType<typeof loadSyslinuxEfi>>,
  boot: NonNullable<ReturnType<typeof findBootFiles>>,
  cmdline: string,
  signal: AbortSignal | undefined,
): Promise<FatFile[]> {
  const room = ESP_SECTORS * SECTOR - 4 * 1024 * 1024;
  const bytes = boot.kernel.size + (boot.initrd?.size ?? 0) + efi.loader.length;
  if (bytes > room)
    throw new FerryError(
      'FERRY_RENDER_LIMIT',
      `Cannot install EXTLINUX for UEFI: the kernel and initrd (${bytes} bytes with the loader) do not fit the ${ESP_SECTORS * SECTOR} byte EFI system partition`,
      { hint: 'Use --firmware bios, or --boot grub, which reads the kernel from the root' },
    );
  const kernel = await store.objects.readAll(boot.kernel.hash!, room, signal);
  const initrd =
    boot.initrd === null ? null : await store.objects.readAll(boot.initrd.hash!, room, signal);
  const config = extlinuxConfig({
    kernel: '/EFI/BOOT/VMLINUZ',
    initrd: initrd === null ? null : '/EFI/BOOT/INITRD.IMG',
    cmdline,
  });
  return [
    { path: 'EFI/BOOT/BOOTX64.EFI', data: efi.loader },
    { path: 'EFI/BOOT/LDLINUX.E64', data: efi.ldlinuxE64 },
    { path: 'EFI/BOOT/SYSLINUX.CFG', data: Buffer.from(config) },
    { path: 'EFI/BOOT/VMLINUZ', data: kernel },
    ...(initrd === null ? [] : [{ path: 'EFI/BOOT/INITRD.IMG', data: initrd }]),
  ];
}
