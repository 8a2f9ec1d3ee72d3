import { FerryError } from '../../errors/index.js';

const SECTOR = 512;
const SECTORS_PER_CLUSTER = 4;
const CLUSTER = SECTOR * SECTORS_PER_CLUSTER;
const RESERVED = 4;
const ROOT_ENTRIES = 512;
const ROOT_SECTORS = (ROOT_ENTRIES * 32) / SECTOR;

/** A file for the FAT volume: a path of 8.3 names ("EFI/BOOT/BOOTX64.EFI") and its bytes. */
export interface FatFile {
  readonly path: string;
  readonly data: Buffer;
}

function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot build the EFI system partition: ${reason}`);
}

/** An 8.3 name as the 11 bytes of a directory entry. */
function shortName(name: string): Buffer {
  const m = /^([A-Z0-9_~-]{1,8})(?:\.([A-Z0-9_~-]{1,3}))?$/.exec(name);
  if (m === null) throw limit(`"${name}" is not an upper-case 8.3 name`);
  return Buffer.from(`${m[1]!.padEnd(8)}${(m[2] ?? '').padEnd(3)}`, 'latin1');
}

/** DOS date and time of a moment in seconds since the epoch (clamped to 1980-2107). */
function dosTime(seconds: number): { date: number; time: number } {
  const d = new Date(Math.min(Math.max(seconds, 315532800), 4354819198) * 1000);
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

interface Dir {
  readonly entries: { name: Buffer; attr: number; cluster: number; size: number }[];
  readonly children: Map<string, Dir>;
  cluster: number;
}

/**
 * A FAT16 volume of `sectors` 512-byte sectors holding `files`, with every
 * byte derived from its inputs: the volume id and all timestamps come from
 * the caller. Layout: 4 reserved sectors, two FATs, a 512-entry root
 * directory, then 2 KiB clusters, each file contiguous in path order.
 */
export function buildFat16(
  sectors: number,
  files: readonly FatFile[],
  volumeId: number,
  label: string,
  time: number,
  hiddenSectors: number,
): Buffer {
  // FAT size: enough 16-bit entries for every cluster that fits after it.
  let fatSectors = 1;
  let clusters = 0;
  for (;;) {
    clusters = Math.floor(
      (sectors - RESERVED - 2 * fatSectors - ROOT_SECTORS) / SECTORS_PER_CLUSTER,
    );
    if ((clusters + 2) * 2 <= fatSectors * SECTOR) break;
    fatSectors++;
  }
  if (clusters < 4085 || clusters >= 65525)
    throw limit(`${sectors} sectors do not make a FAT16 volume`);
  const img = Buffer.alloc(sectors * SECTOR);
  const fatAt = RESERVED * SECTOR;
  const rootAt = (RESERVED + 2 * fatSectors) * SECTOR;
  const dataAt = rootAt + ROOT_SECTORS * SECTOR;
  const fat = Buffer.alloc(fatSectors * SECTOR);
  fat.writeUInt16LE(0xfff8, 0);
  fat.writeUInt16LE(0xffff, 2);
  let next = 2;
  const allocate = (bytes: number): number => {
    const n = Math.max(1, Math.ceil(bytes / CLUSTER));
    if (next + n > clusters + 2) throw limit('the files do not fit');
    const first = next;
    for (let c = first; c < first + n; c++)
      fat.writeUInt16LE(c === first + n - 1 ? 0xffff : c + 1, c * 2);
    next += n;
    return first;
  };
  const { date, time: t } = dosTime(time);
  const root: Dir = { entries: [], children: new Map(), cluster: 0 };
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of sorted) {
    const parts = f.path.split('/');
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      let child = dir.children.get(p);
      if (child === undefined) {
        child = { entries: [], children: new Map(), cluster: allocate(CLUSTER) };
        dir.children.set(p, child);
        dir.entries.push({ name: shortName(p), attr: 0x10, cluster: child.cluster, size: 0 });
      }
      dir = child;
    }
    const cluster = f.data.length === 0 ? 0 : allocate(f.data.length);
    if (cluster !== 0) f.data.copy(img, dataAt + (cluster - 2) * CLUSTER);
    dir.entries.push({
      name: shortName(parts[parts.length - 1]!),
      attr: 0x20,
      cluster,
      size: f.data.length,
    });
  }
  const writeEntries = (at: number, max: number, entries: Dir['entries']): void => {
    if (entries.length > max) throw limit('a directory has too many entries');
    entries.forEach((e, i) => {
      const o = at + i * 32;
      e.name.copy(img, o);
      img.writeUInt8(e.attr, o + 11);
      img.writeUInt16LE(t, o + 14);
      img.writeUInt16LE(date, o + 16);
      img.writeUInt16LE(date, o + 18);
      img.writeUInt16LE(t, o + 22);
      img.writeUInt16LE(date, o + 24);
      img.writeUInt16LE(e.cluster, o + 26);
      img.writeUInt32LE(e.size, o + 28);
    });
  };
  // The volume label is the root's first entry.
  const labelEntry = {
    name: Buffer.from(label.toUpperCase().slice(0, 11).padEnd(11), 'latin1'),
    attr: 0x08,
    cluster: 0,
    size: 0,
  };
  writeEntries(rootAt, ROOT_ENTRIES, [labelEntry, ...root.entries]);
  const walk = (dir: Dir, parent: number): void => {
    for (const child of dir.children.values()) {
      const dot = {
        name: Buffer.from('.          ', 'latin1'),
        attr: 0x10,
        cluster: child.cluster,
        size: 0,
      };
      const dotdot = {
        name: Buffer.from('..         ', 'latin1'),
        attr: 0x10,
        cluster: parent,
        size: 0,
      };
      writeEntries(dataAt + (child.cluster - 2) * CLUSTER, CLUSTER / 32, [
        dot,
        dotdot,
        ...child.entries,
      ]);
      walk(child, child.cluster);
    }
  };
  walk(root, 0);
  fat.copy(img, fatAt);
  fat.copy(img, fatAt + fatSectors * SECTOR);

  // Boot sector with the BPB.
  img.set([0xeb, 0x3c, 0x90], 0);
  img.write('FERRY   ', 3, 'latin1');
  img.writeUInt16LE(SECTOR, 11);
  img.writeUInt8(SECTORS_PER_CLUSTER, 13);
  img.writeUInt16LE(RESERVED, 14);
  img.writeUInt8(2, 16);
  img.writeUInt16LE(ROOT_ENTRIES, 17);
  img.writeUInt16LE(sectors < 65536 ? sectors : 0, 19);
  img.writeUInt8(0xf8, 21);
  img.writeUInt16LE(fatSectors, 22);
  img.writeUInt16LE(32, 24);
  img.writeUInt16LE(64, 26);
  img.writeUInt32LE(hiddenSectors, 28);
  img.writeUInt32LE(sectors < 65536 ? 0 : sectors, 32);
  img.writeUInt8(0x80, 36);
  img.writeUInt8(0x29, 38);
  img.writeUInt32LE(volumeId >>> 0, 39);
  Buffer.from(label.toUpperCase().slice(0, 11).padEnd(11), 'latin1').copy(img, 43);
  img.write('FAT16   ', 54, 'latin1');
  img.writeUInt16LE(0xaa55, 510);
  return img;
}
