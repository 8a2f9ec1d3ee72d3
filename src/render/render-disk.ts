import type { WritableFormat } from '../disk/index.js';
import { FerryError } from '../errors/index.js';
import type { LocalStore, Manifest } from '../store/index.js';
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
import { buildFat16 } from './fat/fat16-writer.js';
import { loadBase } from './load-base.js';
import { planRootFs, type RenderFsType, rootFsUuid } from './plan-root-fs.js';
import { formatUuid } from './render-fs.js';
import { editTree } from './tree-edits.js';
import { newestMtime } from './tree-time.js';
import { writeRender } from './write-render.js';

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
  readonly boot?: 'grub' | 'none';
  /** Kernel arguments after root=UUID=... (default: ro console=tty0 console=ttyS0,115200). */
  readonly kernelArgs?: string;
  readonly label?: string;
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
  readonly kernel: string | null;
  readonly dataChunks: number;
  readonly changedChunks: number;
  readonly totalChunks: number;
  readonly keptFiles: number;
}

const MIB_SECTORS = 2048;
const ESP_SECTORS = 64 * MIB_SECTORS;
const DEFAULT_ARGS = 'ro console=tty0 console=ttyS0,115200';

function usage(reason: string): FerryError {
  return new FerryError('FERRY_USAGE', `Cannot render the disk: ${reason}`);
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** The partition layout for a root filesystem of `fsSectors` sectors. */
function layout(
  table: 'gpt' | 'mbr',
  firmware: Firmware,
  fsSectors: number,
): { parts: Omit<DiskMapPartition, 'guid'>[]; totalSectors: number } {
  const parts: Omit<DiskMapPartition, 'guid'>[] = [];
  let at = MIB_SECTORS;
  if (table === 'gpt' && firmware !== 'uefi') {
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
 * root by UUID and boots the newest kernel. Deterministic like the
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
  const firmware = options.firmware ?? (table === 'mbr' ? 'bios' : 'both');
  if (table === 'mbr' && firmware !== 'bios')
    throw usage('an MBR disk boots with BIOS only; use --table gpt for UEFI');
  const bootWith = options.boot ?? 'grub';
  const fs = options.fs ?? 'ext4';
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
    if (bootWith === 'grub' && boot === null)
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
    const tree = await editTree(
      store,
      manifest,
      [{ path: 'etc/fstab', content: fstab, mode: 0o644 }],
      espId === null ? [] : ['boot/efi'],
    );

    // The root filesystem: the smallest plus the margin, or what the disk size leaves, or the base's.
    const fixedParts = layout(table, firmware, 0);
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
      ...(base === undefined ? {} : { base: base.map.fs }),
    });
    const { parts, totalSectors } = layout(table, firmware, fsBlocks * 8);
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
        cmdline: `root=UUID=${rootUuid} ${options.kernelArgs ?? DEFAULT_ARGS}`,
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
      const files = efi === null ? [] : [{ path: 'EFI/BOOT/BOOTX64.EFI', data: efi }];
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
    const files: FileRegion[] = plan.files.map((f) => ({ ...f, block: f.block + shift }));
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
    const written = await writeRender({ blocksCount: bytes / 4096, meta, files, freed }, map, {
      out: options.out,
      format: options.format ?? 'raw',
      objectPath: (h) => store.objects.pathOf(h),
      ...(base === undefined ? {} : { base: { path: options.base!, image: base.image } }),
      ...(options.overwrite === undefined ? {} : { overwrite: options.overwrite }),
      ...(options.zeroFreed === undefined ? {} : { zeroFreed: options.zeroFreed }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
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
      kernel: bootWith === 'grub' && boot !== null ? boot.kernel.path : null,
      dataChunks: written.dataChunks,
      changedChunks: written.changedChunks,
      totalChunks: written.totalChunks,
      keptFiles: plan.keptFiles,
    };
  } finally {
    await base?.image.close();
  }
}
