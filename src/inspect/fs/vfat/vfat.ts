import { FerryError } from '../../../errors/index.js';
import type { Volume } from '../../volume.js';
import type { DirEntry, FsDriver, NodeStat } from '../fs-driver.js';

/** A FAT node: the first cluster of a file or directory (0 for the FAT12/16 fixed root). */
export interface FatRef {
  readonly cluster: number;
  readonly size: number;
  readonly dir: boolean;
  readonly root: boolean;
  readonly mtime: number | null;
}

interface Geometry {
  readonly fatType: 12 | 16 | 32;
  readonly bytesPerSector: number;
  readonly clusterSize: number;
  readonly fatOffset: number;
  readonly fatBytes: number;
  readonly rootDirOffset: number;
  readonly rootDirBytes: number;
  readonly dataOffset: number;
  readonly clusterCount: number;
  readonly rootCluster: number;
}

/** Bytes of FAT held in memory at once (the FAT is read in pages on demand). */
const FAT_PAGE = 64 * 1024;
const MAX_FAT_PAGES = 64;
const MAX_DIR_BYTES = 16 * 1024 * 1024;

function corrupt(message: string, details: Record<string, number> = {}): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read FAT filesystem: ${message}`, { details });
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Parses and checks the boot sector the way the FAT specification defines the type: by cluster count. */
export function parseFatBootSector(bs: Buffer, volumeSize: number): Geometry | null {
  if (bs.length < 512 || bs.readUInt16LE(510) !== 0xaa55) return null;
  const jump = bs[0];
  if (jump !== 0xeb && jump !== 0xe9) return null;
  const bytesPerSector = bs.readUInt16LE(11);
  const sectorsPerCluster = bs[13]!;
  const reserved = bs.readUInt16LE(14);
  const numFats = bs[16]!;
  const rootEntries = bs.readUInt16LE(17);
  const total16 = bs.readUInt16LE(19);
  const media = bs[21]!;
  const fatSz16 = bs.readUInt16LE(22);
  const total32 = bs.readUInt32LE(32);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector)) return null;
  if (!isPow2(sectorsPerCluster) || sectorsPerCluster > 128) return null;
  if (reserved === 0 || numFats === 0 || numFats > 4 || (media !== 0xf0 && media < 0xf8))
    return null;
  const fatSectors = fatSz16 !== 0 ? fatSz16 : bs.readUInt32LE(36);
  const totalSectors = total16 !== 0 ? total16 : total32;
  if (fatSectors === 0 || totalSectors === 0) return null;
  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataStart = reserved + numFats * fatSectors + rootDirSectors;
  if (dataStart >= totalSectors) return null;
  const clusterCount = Math.floor((totalSectors - dataStart) / sectorsPerCluster);
  const fatType: 12 | 16 | 32 = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
  if (fatType === 32 && (rootEntries !== 0 || fatSz16 !== 0)) return null;
  const clusterSize = bytesPerSector * sectorsPerCluster;
  const fatBytes = fatSectors * bytesPerSector;
  // The FAT must hold an entry for every cluster.
  if (fatBytes * 8 < (clusterCount + 2) * fatType)
    throw corrupt('the FAT is too small for the cluster count');
  if (totalSectors * bytesPerSector > volumeSize) {
    throw corrupt('the filesystem is larger than its volume', {
      total: totalSectors * bytesPerSector,
      volume: volumeSize,
    });
  }
  const rootCluster = fatType === 32 ? bs.readUInt32LE(44) : 0;
  if (fatType === 32 && (rootCluster < 2 || rootCluster >= clusterCount + 2))
    throw corrupt('the root cluster is out of range');
  return {
    fatType,
    bytesPerSector,
    clusterSize,
    fatOffset: reserved * bytesPerSector,
    fatBytes,
    rootDirOffset: (reserved + numFats * fatSectors) * bytesPerSector,
    rootDirBytes: rootDirSectors * bytesPerSector,
    dataOffset: dataStart * bytesPerSector,
    clusterCount,
    rootCluster,
  };
}

function fatTime(date: number, time: number): number | null {
  if (date === 0) return null;
  const y = 1980 + (date >> 9);
  const mo = ((date >> 5) & 0xf) - 1;
  const d = date & 0x1f;
  return Date.UTC(y, mo, d, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2) / 1000;
}

function shortName(e: Buffer): string {
  const nt = e[12]!;
  let base = e.toString('latin1', 0, 8).trimEnd();
  let ext = e.toString('latin1', 8, 11).trimEnd();
  if (base.charCodeAt(0) === 0x05) base = `\xe5${base.slice(1)}`;
  if (nt & 0x08) base = base.toLowerCase();
  if (nt & 0x10) ext = ext.toLowerCase();
  return ext === '' ? base : `${base}.${ext}`;
}

function lfnChecksum(e: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + e[i]!) & 0xff;
  return sum & 0xff;
}

/** A read-only FAT12/16/32 reader (the EFI system partition, boot partitions). */
export class VfatDriver implements FsDriver<FatRef> {
  readonly type = 'vfat' as const;
  readonly caseInsensitive = true;
  readonly #vol: Volume;
  readonly #g: Geometry;
  readonly #fatPages = new Map<number, Buffer>();

  constructor(volume: Volume, geometry: Geometry) {
    this.#vol = volume;
    this.#g = geometry;
  }

  get geometry(): Geometry {
    return this.#g;
  }

  async root(): Promise<FatRef> {
    return {
      cluster: this.#g.fatType === 32 ? this.#g.rootCluster : 0,
      size: 0,
      dir: true,
      root: true,
      mtime: null,
    };
  }

  async stat(ref: FatRef): Promise<NodeStat> {
    return {
      kind: ref.dir ? 'dir' : 'file',
      size: ref.size,
      mode: null,
      uid: null,
      gid: null,
      mtime: ref.mtime,
    };
  }

  async lookup(dir: FatRef, name: string): Promise<FatRef | null> {
    const want = name.toLowerCase();
    for (const e of await this.#entries(dir, Number.POSITIVE_INFINITY)) {
      if (e.name.toLowerCase() === want || e.short.toLowerCase() === want) return e.ref;
    }
    return null;
  }

  async readDir(dir: FatRef, limit: number): Promise<DirEntry<FatRef>[]> {
    return (await this.#entries(dir, limit)).map((e) => ({ name: e.name, ref: e.ref }));
  }

  async readFile(ref: FatRef, offset: number, length: number): Promise<Buffer> {
    const end = Math.min(ref.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    return this.#readChain(ref.cluster, offset, end - offset);
  }

  async readLink(): Promise<string> {
    throw new FerryError('FERRY_FS_UNSUPPORTED', 'Cannot read a symlink: FAT has none');
  }

  /** The next cluster in a chain, or -1 at its end. */
  async #next(cluster: number): Promise<number> {
    const g = this.#g;
    const bitOffset = cluster * g.fatType;
    const byte = Math.floor(bitOffset / 8);
    const page = Math.floor(byte / FAT_PAGE);
    let buf = this.#fatPages.get(page);
    if (buf === undefined) {
      const start = page * FAT_PAGE;
      const len = Math.min(FAT_PAGE + 4, g.fatBytes - start);
      if (len <= 0) throw corrupt('a cluster number lies past the FAT', { cluster });
      buf = await this.#vol.read(g.fatOffset + start, len);
      if (this.#fatPages.size >= MAX_FAT_PAGES)
        this.#fatPages.delete(this.#fatPages.keys().next().value!);
      this.#fatPages.set(page, buf);
    }
    const at = byte - page * FAT_PAGE;
    let v: number;
    if (g.fatType === 12) {
      if (at + 2 > buf.length) throw corrupt('the FAT is truncated', { cluster });
      const raw = buf.readUInt16LE(at);
      v = cluster & 1 ? raw >> 4 : raw & 0xfff;
      if (v >= 0xff8) return -1;
    } else if (g.fatType === 16) {
      if (at + 2 > buf.length) throw corrupt('the FAT is truncated', { cluster });
      v = buf.readUInt16LE(at);
      if (v >= 0xfff8) return -1;
    } else {
      if (at + 4 > buf.length) throw corrupt('the FAT is truncated', { cluster });
      v = buf.readUInt32LE(at) & 0x0fffffff;
      if (v >= 0x0ffffff8) return -1;
    }
    if (v < 2 || v >= g.clusterCount + 2)
      throw corrupt('a cluster chain points outside the data area', { cluster, next: v });
    return v;
  }

  /** Reads `length` bytes at `offset` of a cluster chain, coalescing contiguous clusters. */
  async #readChain(first: number, offset: number, length: number): Promise<Buffer> {
    const g = this.#g;
    if (first < 2 || first >= g.clusterCount + 2)
      throw corrupt('a file starts outside the data area', { cluster: first });
    const out = Buffer.alloc(length);
    let cluster = first;
    let pos = 0;
    let steps = 0;
    // Clusters seen, to catch a chain that loops back before the file ends.
    const seen = new Set<number>();
    const visit = (c: number): void => {
      if (seen.has(c) || ++steps > g.clusterCount + 1)
        throw corrupt('a cluster chain loops', { cluster: first });
      if (seen.size < 1_000_000) seen.add(c);
    };
    while (pos < offset + length) {
      visit(cluster);
      // Extend a run of physically contiguous clusters.
      let run = 1;
      let next = await this.#next(cluster);
      while (next === cluster + run && pos + (run + 1) * g.clusterSize <= offset + length) {
        visit(next);
        run++;
        next = await this.#next(next);
      }
      const runStart = pos;
      const runEnd = pos + run * g.clusterSize;
      const from = Math.max(runStart, offset);
      const to = Math.min(runEnd, offset + length);
      if (from < to) {
        const phys = g.dataOffset + (cluster - 2) * g.clusterSize + (from - runStart);
        const data = await this.#vol.read(phys, to - from);
        data.copy(out, from - offset);
      }
      pos = runEnd;
      if (pos >= offset + length) break;
      if (next < 0) throw corrupt('a cluster chain ends before the file does', { cluster: first });
      // `next` is the cluster after the run.
      cluster = next;
    }
    return out;
  }

  async #dirBytes(dir: FatRef): Promise<Buffer> {
    const g = this.#g;
    if (dir.root && g.fatType !== 32) return this.#vol.read(g.rootDirOffset, g.rootDirBytes);
    // A directory's size is its chain length: walk it (capped) to find out.
    let n = 0;
    let c = dir.cluster;
    while (c >= 0) {
      if (++n * g.clusterSize > MAX_DIR_BYTES) {
        throw new FerryError(
          'FERRY_FS_LIMIT',
          'Cannot read FAT directory: it is larger than 16 MiB',
          { details: { cluster: dir.cluster } },
        );
      }
      if (n > g.clusterCount)
        throw corrupt('a directory cluster chain loops', { cluster: dir.cluster });
      c = await this.#next(c);
    }
    return this.#readChain(dir.cluster, 0, n * g.clusterSize);
  }

  async #entries(
    dir: FatRef,
    limit: number,
  ): Promise<Array<{ name: string; short: string; ref: FatRef }>> {
    if (!dir.dir) return [];
    const buf = await this.#dirBytes(dir);
    const out: Array<{ name: string; short: string; ref: FatRef }> = [];
    let lfn: string[] = [];
    let lfnSum = -1;
    for (let off = 0; off + 32 <= buf.length && out.length < limit; off += 32) {
      const e = buf.subarray(off, off + 32);
      const first = e[0]!;
      if (first === 0x00) break;
      if (first === 0xe5) {
        lfn = [];
        continue;
      }
      const attr = e[11]!;
      if ((attr & 0x3f) === 0x0f) {
        const seq = first & 0x1f;
        if (first & 0x40) lfn = [];
        const part = Buffer.concat([
          e.subarray(1, 11),
          e.subarray(14, 26),
          e.subarray(28, 32),
        ]).toString('utf16le');
        if (seq >= 1 && seq <= 20) lfn[seq - 1] = part.split('\0')[0] ?? '';
        lfnSum = e[13]!;
        continue;
      }
      if (attr & 0x08) {
        lfn = [];
        continue;
      }
      const short = shortName(e);
      if (short === '.' || short === '..') {
        lfn = [];
        continue;
      }
      const long =
        lfn.length > 0 && lfnSum === lfnChecksum(e) && !lfn.includes(undefined as never)
          ? lfn.join('')
          : null;
      lfn = [];
      const clusterHi = this.#g.fatType === 32 ? e.readUInt16LE(20) : 0;
      const cluster = (clusterHi << 16) | e.readUInt16LE(26);
      const isDir = (attr & 0x10) !== 0;
      const size = isDir ? 0 : e.readUInt32LE(28);
      if (isDir && (cluster < 2 || cluster >= this.#g.clusterCount + 2)) continue;
      const name = (long ?? short).replace(/[\0/]/g, '');
      if (name === '') continue;
      out.push({
        name,
        short,
        ref: {
          cluster,
          size: size === 0 ? 0 : size,
          dir: isDir,
          root: false,
          mtime: fatTime(e.readUInt16LE(24), e.readUInt16LE(22)),
        },
      });
    }
    return out;
  }
}

/** Opens a FAT12/16/32 filesystem, or null when the boot sector is not FAT. */
export async function openVfat(volume: Volume): Promise<VfatDriver | null> {
  if (volume.size < 512) return null;
  const bs = await volume.read(0, 512);
  const g = parseFatBootSector(bs, volume.size);
  return g === null ? null : new VfatDriver(volume, g);
}
