import { FerryError } from '../../../errors/index.js';
import type { Volume } from '../../volume.js';
import type { DirEntry, FsDriver, NodeStat } from '../fs-driver.js';

/**
 * A read-only NTFS reader: MFT records (with update-sequence fixups),
 * resident and non-resident attributes, runlists, attribute lists, and
 * directory indexes ($INDEX_ROOT + $INDEX_ALLOCATION B+trees). Enough to find
 * Windows and read its registry hives. Compressed and encrypted data are
 * refused with FERRY_FS_UNSUPPORTED. Reparse points (junctions, symlinks) are
 * reported as 'other' and never followed.
 */

interface Boot {
  readonly bytesPerSector: number;
  readonly clusterSize: number;
  readonly totalBytes: number;
  readonly mftLcn: number;
  readonly recordSize: number;
  readonly indexRecordSize: number;
  readonly serial: string;
}

interface Run {
  /** First virtual cluster of the run. */
  readonly vcn: number;
  readonly length: number;
  /** Logical cluster, or -1 for a sparse run. */
  readonly lcn: number;
}

interface Attr {
  readonly type: number;
  readonly name: string;
  readonly flags: number;
  readonly resident: boolean;
  /** Resident value. */
  readonly value: Buffer | null;
  /** Non-resident: runs, sizes. */
  readonly runs: Run[];
  readonly startVcn: number;
  readonly dataSize: number;
  readonly initSize: number;
}

interface MftRecord {
  readonly num: number;
  readonly flags: number;
  readonly baseRef: number;
  readonly attrs: Attr[];
}

interface Node {
  readonly num: number;
  readonly dir: boolean;
  readonly reparse: boolean;
  readonly size: number;
  readonly mtime: number | null;
  readonly attrs: Attr[];
}

const AT_STANDARD_INFORMATION = 0x10;
const AT_ATTRIBUTE_LIST = 0x20;
const AT_VOLUME_NAME = 0x60;
const AT_DATA = 0x80;
const AT_INDEX_ROOT = 0x90;
const AT_INDEX_ALLOCATION = 0xa0;
const AT_REPARSE_POINT = 0xc0;
const ROOT_RECORD = 5;
const MAX_RUNS = 100_000;
const MAX_ATTRS = 256;
const MAX_INDEX_BLOCKS = 65_536;
const MAX_RECORD_CACHE = 2048;
const MAX_ATTR_LIST_BYTES = 1024 * 1024;

function corrupt(message: string, details: Record<string, number | string> = {}): FerryError {
  return new FerryError('FERRY_FS_CORRUPT', `Cannot read NTFS filesystem: ${message}`, { details });
}

/** Parses and checks an NTFS boot sector; null when the OEM id is not NTFS. */
export function parseNtfsBoot(bs: Buffer, volumeSize: number): Boot | null {
  if (bs.length < 512 || bs.toString('latin1', 3, 11) !== 'NTFS    ') return null;
  const bytesPerSector = bs.readUInt16LE(11);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector))
    throw corrupt('bytes per sector is invalid', { bytesPerSector });
  const spcRaw = bs[13]!;
  const sectorsPerCluster = spcRaw <= 0x80 ? spcRaw : 2 ** (256 - spcRaw);
  if (
    sectorsPerCluster === 0 ||
    (sectorsPerCluster & (sectorsPerCluster - 1)) !== 0 ||
    sectorsPerCluster > 4096
  ) {
    throw corrupt('sectors per cluster is invalid', { spcRaw });
  }
  const clusterSize = bytesPerSector * sectorsPerCluster;
  if (clusterSize > 2 * 1024 * 1024)
    throw corrupt('the cluster size is too large', { clusterSize });
  const totalSectors = bs.readBigUInt64LE(0x28);
  const mftLcn = bs.readBigUInt64LE(0x30);
  const sizeOf = (raw: number): number => {
    const v = raw > 127 ? raw - 256 : raw;
    return v > 0 ? v * clusterSize : 2 ** -v;
  };
  const recordSize = sizeOf(bs[0x40]!);
  const indexRecordSize = sizeOf(bs[0x44]!);
  if (recordSize < 512 || recordSize > 65536 || (recordSize & (recordSize - 1)) !== 0)
    throw corrupt('the MFT record size is invalid');
  if (
    indexRecordSize < 512 ||
    indexRecordSize > 65536 ||
    (indexRecordSize & (indexRecordSize - 1)) !== 0
  ) {
    throw corrupt('the index record size is invalid');
  }
  if (totalSectors > BigInt(Number.MAX_SAFE_INTEGER) / BigInt(bytesPerSector))
    throw corrupt('the volume size is too large');
  const totalBytes = Number(totalSectors) * bytesPerSector;
  if (mftLcn * BigInt(clusterSize) >= BigInt(Math.min(totalBytes, volumeSize)))
    throw corrupt('the MFT lies past the end of the volume');
  const serial = bs.readBigUInt64LE(0x48).toString(16).toUpperCase().padStart(16, '0');
  return {
    bytesPerSector,
    clusterSize,
    totalBytes,
    mftLcn: Number(mftLcn),
    recordSize,
    indexRecordSize,
    serial,
  };
}

/** Applies update-sequence fixups to a multi-sector record in place. */
function applyFixups(rec: Buffer, magic: string, what: string): void {
  if (rec.toString('latin1', 0, 4) !== magic) throw corrupt(`${what} has a bad magic`);
  const usaOff = rec.readUInt16LE(4);
  const usaCount = rec.readUInt16LE(6);
  if (
    usaCount === 0 ||
    usaCount - 1 !== rec.length / 512 ||
    usaOff + usaCount * 2 > rec.length ||
    usaOff < 8
  ) {
    throw corrupt(`${what} has an invalid update sequence`);
  }
  const usn = rec.readUInt16LE(usaOff);
  for (let i = 1; i < usaCount; i++) {
    const end = i * 512 - 2;
    if (rec.readUInt16LE(end) !== usn) throw corrupt(`${what} is torn (update sequence mismatch)`);
    rec.writeUInt16LE(rec.readUInt16LE(usaOff + i * 2), end);
  }
}

function readVarInt(buf: Buffer, at: number, len: number, signed: boolean): number {
  if (len === 0) return 0;
  if (len > 8) throw corrupt('a runlist field is too wide');
  let v = 0n;
  for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
  if (signed && (buf[at + len - 1]! & 0x80) !== 0) v -= 1n << BigInt(len * 8);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
    throw corrupt('a runlist value is too large');
  return Number(v);
}

function parseRunlist(buf: Buffer, at: number, end: number, startVcn: number): Run[] {
  const runs: Run[] = [];
  let vcn = startVcn;
  let lcn = 0;
  let p = at;
  while (p < end) {
    const header = buf[p]!;
    if (header === 0) break;
    const lenBytes = header & 0xf;
    const offBytes = header >> 4;
    if (p + 1 + lenBytes + offBytes > end) throw corrupt('a runlist is truncated');
    const length = readVarInt(buf, p + 1, lenBytes, false);
    if (length <= 0) throw corrupt('a run has no length');
    let runLcn = -1;
    if (offBytes > 0) {
      lcn += readVarInt(buf, p + 1 + lenBytes, offBytes, true);
      if (lcn < 0) throw corrupt('a run points before the volume');
      runLcn = lcn;
    }
    runs.push({ vcn, length, lcn: runLcn });
    if (runs.length > MAX_RUNS)
      throw new FerryError('FERRY_FS_LIMIT', 'Cannot read NTFS attribute: more than 100000 runs');
    vcn += length;
    p += 1 + lenBytes + offBytes;
  }
  return runs;
}

function parseAttrs(rec: Buffer, first: number, used: number): Attr[] {
  const attrs: Attr[] = [];
  let p = first;
  while (p + 8 <= used) {
    const type = rec.readUInt32LE(p);
    if (type === 0xffffffff) break;
    const len = rec.readUInt32LE(p + 4);
    if (len < 16 || p + len > used || len % 8 !== 0)
      throw corrupt('an attribute header is invalid', { type });
    if (attrs.length >= MAX_ATTRS) throw corrupt('a record has too many attributes');
    const nonResident = rec[p + 8]! !== 0;
    const nameLen = rec[p + 9]!;
    const nameOff = rec.readUInt16LE(p + 10);
    if (nameLen > 0 && nameOff + nameLen * 2 > len)
      throw corrupt('an attribute name lies outside the attribute');
    const name = nameLen > 0 ? rec.toString('utf16le', p + nameOff, p + nameOff + nameLen * 2) : '';
    const flags = rec.readUInt16LE(p + 12);
    if (!nonResident) {
      if (len < 24) throw corrupt('a resident attribute is truncated');
      const vlen = rec.readUInt32LE(p + 16);
      const voff = rec.readUInt16LE(p + 20);
      if (voff + vlen > len) throw corrupt('a resident value lies outside its attribute', { type });
      attrs.push({
        type,
        name,
        flags,
        resident: true,
        value: Buffer.from(rec.subarray(p + voff, p + voff + vlen)),
        runs: [],
        startVcn: 0,
        dataSize: vlen,
        initSize: vlen,
      });
    } else {
      if (len < 64) throw corrupt('a non-resident attribute is truncated');
      const startVcn = readVarInt(rec, p + 16, 8, false);
      const runOff = rec.readUInt16LE(p + 32);
      if (runOff >= len) throw corrupt('a runlist lies outside its attribute');
      const dataSize = readVarInt(rec, p + 48, 8, false);
      const initSize = readVarInt(rec, p + 56, 8, false);
      attrs.push({
        type,
        name,
        flags,
        resident: false,
        value: null,
        runs: parseRunlist(rec, p + runOff, p + len, startVcn),
        startVcn,
        dataSize,
        initSize: Math.min(initSize, dataSize),
      });
    }
    p += len;
  }
  return attrs;
}

function ntfsTime(t: bigint): number | null {
  if (t === 0n) return null;
  return Number(t / 10_000_000n - 11_644_473_600n);
}

export class NtfsDriver implements FsDriver<number> {
  readonly type = 'ntfs' as const;
  readonly caseInsensitive = true;
  readonly boot: Boot;
  readonly #vol: Volume;
  #mftRuns: Run[] = [];
  readonly #records = new Map<number, MftRecord>();
  readonly #nodes = new Map<number, Node>();

  constructor(volume: Volume, boot: Boot) {
    this.#vol = volume;
    this.boot = boot;
  }

  /** Loads the $MFT's own runlist from record 0 (and its attribute list, if any). */
  async init(): Promise<void> {
    const b = this.boot;
    const rec0 = await this.#vol.read(b.mftLcn * b.clusterSize, b.recordSize);
    applyFixups(rec0, 'FILE', 'MFT record 0');
    const attrs = parseAttrs(
      rec0,
      rec0.readUInt16LE(20),
      Math.min(rec0.readUInt32LE(24), rec0.length),
    );
    const data = attrs.find((a) => a.type === AT_DATA && a.name === '' && !a.resident);
    if (data === undefined) throw corrupt('the $MFT has no data attribute');
    this.#mftRuns = data.runs;
    // A fragmented $MFT continues its data attribute in other records, listed in its attribute list.
    if (attrs.some((a) => a.type === AT_ATTRIBUTE_LIST)) {
      const node = await this.#node(0);
      const full = node.attrs
        .filter((a) => a.type === AT_DATA && a.name === '' && !a.resident)
        .sort((x, y) => x.startVcn - y.startVcn);
      this.#mftRuns = full.flatMap((a) => a.runs);
      this.#nodes.clear();
      this.#records.clear();
    }
  }

  get label(): Promise<string | null> {
    return this.#node(3)
      .then((n) => {
        const v = n.attrs.find((a) => a.type === AT_VOLUME_NAME)?.value;
        return v === undefined || v === null ? null : v.toString('utf16le') || null;
      })
      .catch(() => null);
  }

  async root(): Promise<number> {
    return ROOT_RECORD;
  }

  async stat(num: number): Promise<NodeStat> {
    const n = await this.#node(num);
    return {
      kind: n.reparse ? 'other' : n.dir ? 'dir' : 'file',
      size: n.size,
      mode: null,
      uid: null,
      gid: null,
      mtime: n.mtime,
    };
  }

  async lookup(dir: number, name: string): Promise<number | null> {
    const want = name.toUpperCase();
    let found: number | null = null;
    await this.#walkIndex(
      dir,
      (n, ref) => {
        if (n.toUpperCase() === want) {
          found = ref;
          return false;
        }
        return true;
      },
      true,
    );
    return found;
  }

  async readDir(dir: number, limit: number): Promise<DirEntry<number>[]> {
    const out: DirEntry<number>[] = [];
    const seen = new Set<number>();
    await this.#walkIndex(
      dir,
      (name, ref) => {
        if (!seen.has(ref) && !name.startsWith('$')) {
          seen.add(ref);
          out.push({ name, ref });
        }
        return out.length < limit;
      },
      false,
    );
    return out;
  }

  async readFile(num: number, offset: number, length: number): Promise<Buffer> {
    const n = await this.#node(num);
    const parts = n.attrs.filter((a) => a.type === AT_DATA && a.name === '');
    const end = Math.min(n.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    return this.#readAttr(parts, offset, end - offset);
  }

  async readLink(): Promise<string> {
    throw new FerryError('FERRY_FS_UNSUPPORTED', 'Cannot read an NTFS reparse point as a symlink');
  }

  /** Reads [offset, offset+length) of an attribute stream made of one or more pieces. */
  async #readAttr(pieces: readonly Attr[], offset: number, length: number): Promise<Buffer> {
    const first = pieces[0];
    if (first === undefined) throw corrupt('a file has no data attribute');
    if (first.resident) {
      const v = first.value ?? Buffer.alloc(0);
      const out = Buffer.alloc(length);
      v.copy(out, 0, Math.min(offset, v.length), Math.min(offset + length, v.length));
      return out;
    }
    if ((first.flags & 0x0001) !== 0) {
      throw new FerryError('FERRY_FS_UNSUPPORTED', 'Cannot read NTFS file: it is compressed', {
        details: {},
      });
    }
    if ((first.flags & 0x4000) !== 0)
      throw new FerryError('FERRY_FS_UNSUPPORTED', 'Cannot read NTFS file: it is encrypted');
    const runs = pieces.flatMap((p) => p.runs);
    const base = pieces.find((p) => p.startVcn === 0) ?? first;
    return this.#readRuns(runs, offset, length, base.initSize);
  }

  async #readRuns(
    runs: readonly Run[],
    offset: number,
    length: number,
    initSize: number,
  ): Promise<Buffer> {
    const cs = this.boot.clusterSize;
    const out = Buffer.alloc(length);
    for (const r of runs) {
      const rStart = r.vcn * cs;
      const rEnd = (r.vcn + r.length) * cs;
      const from = Math.max(rStart, offset);
      const to = Math.min(rEnd, offset + length, Math.max(initSize, 0));
      if (from >= to || r.lcn < 0) continue;
      const phys = r.lcn * cs + (from - rStart);
      if (phys + (to - from) > this.#vol.size)
        throw corrupt('a run lies past the end of the volume');
      (await this.#vol.read(phys, to - from)).copy(out, from - offset);
    }
    return out;
  }

  async #record(num: number): Promise<MftRecord> {
    const cached = this.#records.get(num);
    if (cached !== undefined) return cached;
    const b = this.boot;
    const buf = await this.#readRuns(
      this.#mftRuns,
      num * b.recordSize,
      b.recordSize,
      Number.MAX_SAFE_INTEGER,
    );
    applyFixups(buf, 'FILE', `MFT record ${num}`);
    const first = buf.readUInt16LE(20);
    const used = Math.min(buf.readUInt32LE(24), buf.length);
    if (first < 42 || first >= used)
      throw corrupt('an MFT record has an invalid attribute offset', { record: num });
    const rec: MftRecord = {
      num,
      flags: buf.readUInt16LE(22),
      baseRef: Number(buf.readBigUInt64LE(32) & 0xffffffffffffn),
      attrs: parseAttrs(buf, first, used),
    };
    if (this.#records.size >= MAX_RECORD_CACHE)
      this.#records.delete(this.#records.keys().next().value!);
    this.#records.set(num, rec);
    return rec;
  }

  /** A file's attributes, gathered across records through its attribute list. */
  async #node(num: number): Promise<Node> {
    const cached = this.#nodes.get(num);
    if (cached !== undefined) return cached;
    const rec = await this.#record(num);
    if ((rec.flags & 1) === 0)
      throw corrupt('an index points to an unused MFT record', { record: num });
    let attrs = rec.attrs;
    const list = attrs.find((a) => a.type === AT_ATTRIBUTE_LIST);
    if (list !== undefined) {
      const size = list.dataSize;
      if (size > MAX_ATTR_LIST_BYTES)
        throw new FerryError(
          'FERRY_FS_LIMIT',
          'Cannot read NTFS attribute list: it is larger than 1 MiB',
        );
      const bytes = list.resident
        ? (list.value ?? Buffer.alloc(0))
        : await this.#readRuns(list.runs, 0, size, list.initSize);
      const others = new Set<number>();
      for (let p = 0; p + 26 <= bytes.length; ) {
        const len = bytes.readUInt16LE(p + 4);
        if (len < 26 || p + len > bytes.length)
          throw corrupt('an attribute list entry is invalid', { record: num });
        const ref = Number(bytes.readBigUInt64LE(p + 16) & 0xffffffffffffn);
        if (ref !== num) others.add(ref);
        if (others.size > MAX_ATTRS) throw corrupt('an attribute list names too many records');
        p += len;
      }
      attrs = [...attrs];
      for (const o of others) {
        const ext = await this.#record(o);
        if (ext.baseRef !== num)
          throw corrupt('an extension record belongs to another file', { record: o });
        attrs.push(...ext.attrs);
      }
    }
    const data = attrs.filter((a) => a.type === AT_DATA && a.name === '');
    const base = data.find((a) => a.startVcn === 0);
    const si = attrs.find((a) => a.type === AT_STANDARD_INFORMATION)?.value;
    const node: Node = {
      num,
      dir: (rec.flags & 2) !== 0,
      reparse: attrs.some((a) => a.type === AT_REPARSE_POINT),
      size: base?.dataSize ?? 0,
      mtime:
        si !== null && si !== undefined && si.length >= 16 ? ntfsTime(si.readBigUInt64LE(8)) : null,
      attrs,
    };
    if (this.#nodes.size >= MAX_RECORD_CACHE) this.#nodes.delete(this.#nodes.keys().next().value!);
    this.#nodes.set(num, node);
    return node;
  }

  /**
   * Walks a directory index ($I30): the root's entries and every index block
   * reachable from them. `fn` gets each name; returning false stops. With
   * `withDos`, DOS 8.3 names are offered too (lookups match them).
   */
  async #walkIndex(
    dir: number,
    fn: (name: string, ref: number) => boolean,
    withDos: boolean,
  ): Promise<void> {
    const node = await this.#node(dir);
    if (!node.dir) return;
    const root = node.attrs.find((a) => a.type === AT_INDEX_ROOT && a.name === '$I30');
    if (root?.value === null || root === undefined)
      throw corrupt('a directory has no index root', { record: dir });
    const alloc = node.attrs.filter((a) => a.type === AT_INDEX_ALLOCATION && a.name === '$I30');
    const v = root.value;
    if (v.length < 32) throw corrupt('an index root is truncated');
    const blockSize = v.readUInt32LE(8);
    if (blockSize !== this.boot.indexRecordSize && blockSize !== 4096)
      throw corrupt('an index block size is invalid', { blockSize });
    const pending: number[] = [];
    const visited = new Set<number>();
    const entries = (buf: Buffer, headerAt: number): boolean => {
      const start = headerAt + buf.readUInt32LE(headerAt);
      const end = Math.min(headerAt + buf.readUInt32LE(headerAt + 4), buf.length);
      let p = start;
      while (p + 16 <= end) {
        const ref = Number(buf.readBigUInt64LE(p) & 0xffffffffffffn);
        const len = buf.readUInt16LE(p + 8);
        const keyLen = buf.readUInt16LE(p + 10);
        const flags = buf.readUInt32LE(p + 12);
        if (len < 16 || p + len > end) throw corrupt('an index entry is invalid', { record: dir });
        if (flags & 1) pending.push(readVarInt(buf, p + len - 8, 8, false));
        if (flags & 2) break;
        if (keyLen >= 66 && p + 16 + keyLen <= p + len) {
          const k = p + 16;
          const nameLen = buf[k + 64]!;
          const ns = buf[k + 65]!;
          if (k + 66 + nameLen * 2 > p + len) throw corrupt('an index key is truncated');
          const name = buf.toString('utf16le', k + 66, k + 66 + nameLen * 2);
          if ((withDos || ns !== 2) && name !== '.' && !fn(name, ref)) return false;
        }
        p += len;
      }
      return true;
    };
    if (!entries(v, 16)) return;
    while (pending.length > 0) {
      const vcn = pending.shift()!;
      if (visited.has(vcn))
        throw corrupt('a directory index refers to a block twice', { record: dir, vcn });
      visited.add(vcn);
      if (visited.size > MAX_INDEX_BLOCKS)
        throw new FerryError(
          'FERRY_FS_LIMIT',
          'Cannot read NTFS directory: more than 65536 index blocks',
        );
      const clusterBytes = this.boot.clusterSize;
      const byteOff = blockSize >= clusterBytes ? vcn * clusterBytes : vcn * 512;
      const blk = await this.#readAttrPieces(alloc, byteOff, blockSize);
      applyFixups(blk, 'INDX', 'an index block');
      if (!entries(blk, 24)) return;
    }
  }

  async #readAttrPieces(pieces: readonly Attr[], offset: number, length: number): Promise<Buffer> {
    if (pieces.length === 0)
      throw corrupt('a directory refers to index blocks but has no index allocation');
    const runs = pieces.flatMap((p) => p.runs);
    return this.#readRuns(runs, offset, length, Number.MAX_SAFE_INTEGER);
  }
}

/** Opens NTFS on a volume, or null when the boot sector is not NTFS. */
export async function openNtfs(volume: Volume): Promise<NtfsDriver | null> {
  if (volume.size < 512) return null;
  const boot = parseNtfsBoot(await volume.read(0, 512), volume.size);
  if (boot === null) return null;
  const d = new NtfsDriver(volume, boot);
  await d.init();
  return d;
}
