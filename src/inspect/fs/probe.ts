import type { Volume } from '../volume.js';
import { probeBtrfs } from './probe-btrfs.js';
import { probeExt } from './probe-ext.js';
import { probeFat } from './probe-fat.js';
import { probeIso } from './probe-iso.js';
import { probeLuks } from './probe-luks.js';
import { probeLvm } from './probe-lvm.js';
import { probeNtfs } from './probe-ntfs.js';
import { probeSwap } from './probe-swap.js';
import { type FsProbe, PROBE_HEAD_BYTES, type Prober, type ProbeSource } from './probe-util.js';
import { probeXfs } from './probe-xfs.js';

export type { FsProbe } from './probe-util.js';
export { PROBE_HEAD_BYTES } from './probe-util.js';

/**
 * Probes in order: containers first (LUKS, LVM2), then filesystems whose
 * magic sits at the start, then those needing more checks or reads (FAT's
 * heuristics, swap at the end of the first page, ISO9660 at 32 KiB, btrfs at
 * 64 KiB). The first match wins.
 */
const PROBERS: readonly Prober[] = [
  probeLuks,
  probeLvm,
  probeXfs,
  probeExt,
  probeNtfs,
  probeFat,
  probeSwap,
  probeIso,
  probeBtrfs,
];

export interface ProbeOptions {
  readonly signal?: AbortSignal;
}

/**
 * Names the filesystem (or LUKS/LVM2 container, or swap) on a volume from its
 * signatures, with UUID, label and size as blkid reports them; null when no
 * signature matches. Reads the first 4 KiB, plus a few KiB at fixed offsets
 * (ISO9660 descriptors, btrfs superblock, NTFS $Volume) only when needed.
 * Every field is bounds-checked: corrupt values give null fields or no match,
 * never an exception other than a FerryError from the volume itself.
 */
export async function probeFilesystem(
  volume: Volume,
  options: ProbeOptions = {},
): Promise<FsProbe | null> {
  const { signal } = options;
  const head = await volume.read(0, Math.min(volume.size, PROBE_HEAD_BYTES), signal);
  const src: ProbeSource = {
    size: volume.size,
    head,
    read: async (offset, length) =>
      Number.isSafeInteger(offset) && offset >= 0 && length >= 0 && offset + length <= volume.size
        ? volume.read(offset, length, signal)
        : null,
  };
  for (const probe of PROBERS) {
    const found = await probe(src);
    if (found !== null) return found;
  }
  return null;
}
