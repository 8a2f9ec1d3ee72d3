import { FerryError } from '../../errors/index.js';

/**
 * A bounded reader for Windows registry hives (regf): keys (nk), subkey
 * lists (lf, lh, li, ri), values (vk) and big data (db). It reads cells on
 * demand through `read`, so looking up one key in a 100 MiB SOFTWARE hive
 * touches a few pages. Every offset is checked against the hive size.
 */
export type HiveRead = (offset: number, length: number) => Promise<Buffer>;

export type HiveValue = string | number | bigint | Buffer | string[];

const BASE = 4096;
const MAX_SUBKEYS = 65_536;
const MAX_VALUES = 65_536;
const MAX_VALUE_BYTES = 1024 * 1024;
const MAX_LIST_DEPTH = 4;

function bad(message: string, details: Record<string, number | string> = {}): FerryError {
  return new FerryError('FERRY_HIVE_CORRUPT', `Cannot read registry hive: ${message}`, { details });
}

export class Hive {
  readonly #read: HiveRead;
  readonly #size: number;
  readonly #root: number;
  readonly #cells = new Map<number, Buffer>();

  private constructor(read: HiveRead, size: number, root: number) {
    this.#read = read;
    this.#size = size;
    this.#root = root;
  }

  /** Opens a hive of `size` bytes; refuses anything without a valid base block. */
  static async open(read: HiveRead, size: number): Promise<Hive> {
    if (size < BASE + 32) throw bad('the file is too small');
    const base = await read(0, 512);
    if (base.toString('latin1', 0, 4) !== 'regf') throw bad('the signature is not regf');
    let sum = 0;
    for (let i = 0; i < 508; i += 4) sum = (sum ^ base.readUInt32LE(i)) >>> 0;
    if (sum === 0) sum = 1;
    else if (sum === 0xffffffff) sum = 0xfffffffe;
    if (sum !== base.readUInt32LE(508)) throw bad('the base block checksum does not match');
    const root = base.readUInt32LE(36);
    const dataSize = base.readUInt32LE(40);
    const end = Math.min(size, BASE + dataSize);
    if (root + 8 > end - BASE) throw bad('the root key lies outside the hive');
    return new Hive(read, end, root);
  }

  /** The data of the cell at `off` (relative to the first hbin). */
  async #cell(off: number): Promise<Buffer> {
    const cached = this.#cells.get(off);
    if (cached !== undefined) return cached;
    const abs = BASE + off;
    if (off < 0 || off % 8 !== 0 || abs + 4 > this.#size)
      throw bad('a cell offset is out of range', { off });
    const hdr = await this.#read(abs, 4);
    const raw = hdr.readInt32LE(0);
    const len = Math.abs(raw);
    if (len < 8 || abs + len > this.#size || len > MAX_VALUE_BYTES + 8)
      throw bad('a cell size is invalid', { off, len });
    const data = await this.#read(abs + 4, len - 4);
    if (this.#cells.size > 4096) this.#cells.clear();
    this.#cells.set(off, data);
    return data;
  }

  async #key(off: number): Promise<{
    name: string;
    subkeys: number;
    subkeyList: number;
    values: number;
    valueList: number;
  }> {
    const c = await this.#cell(off);
    if (c.length < 76 || c.toString('latin1', 0, 2) !== 'nk')
      throw bad('a key cell is invalid', { off });
    const flags = c.readUInt16LE(2);
    const nameLen = c.readUInt16LE(72);
    if (76 + nameLen > c.length) throw bad('a key name lies outside its cell', { off });
    const name =
      flags & 0x20
        ? c.toString('latin1', 76, 76 + nameLen)
        : c.toString('utf16le', 76, 76 + nameLen);
    return {
      name,
      subkeys: c.readUInt32LE(20),
      subkeyList: c.readUInt32LE(28),
      values: c.readUInt32LE(36),
      valueList: c.readUInt32LE(40),
    };
  }

  async #subkeyOffsets(list: number, depth = 0): Promise<number[]> {
    if (depth > MAX_LIST_DEPTH) throw bad('subkey lists nest too deeply');
    const c = await this.#cell(list);
    const sig = c.toString('latin1', 0, 2);
    const n = c.readUInt16LE(2);
    const out: number[] = [];
    if (sig === 'lf' || sig === 'lh') {
      if (4 + n * 8 > c.length) throw bad('a subkey list is truncated');
      for (let i = 0; i < n; i++) out.push(c.readUInt32LE(4 + i * 8));
    } else if (sig === 'li') {
      if (4 + n * 4 > c.length) throw bad('a subkey list is truncated');
      for (let i = 0; i < n; i++) out.push(c.readUInt32LE(4 + i * 4));
    } else if (sig === 'ri') {
      if (4 + n * 4 > c.length) throw bad('a subkey index is truncated');
      for (let i = 0; i < n; i++) {
        out.push(...(await this.#subkeyOffsets(c.readUInt32LE(4 + i * 4), depth + 1)));
        if (out.length > MAX_SUBKEYS) throw bad('a key has too many subkeys');
      }
    } else {
      throw bad('a subkey list has an unknown signature', { sig });
    }
    return out;
  }

  /** The key at a backslash-separated path from the root (case-insensitive), or null. */
  async #find(path: string): Promise<number | null> {
    let cur = this.#root;
    for (const part of path.split('\\').filter((p) => p !== '')) {
      const k = await this.#key(cur);
      if (k.subkeys === 0) return null;
      if (k.subkeys > MAX_SUBKEYS) throw bad('a key has too many subkeys');
      let next: number | null = null;
      for (const off of await this.#subkeyOffsets(k.subkeyList)) {
        if ((await this.#key(off)).name.toLowerCase() === part.toLowerCase()) {
          next = off;
          break;
        }
      }
      if (next === null) return null;
      cur = next;
    }
    return cur;
  }

  /** Subkey names of a key, or null when the key is absent. */
  async subkeys(path: string): Promise<string[] | null> {
    const off = await this.#find(path);
    if (off === null) return null;
    const k = await this.#key(off);
    if (k.subkeys === 0) return [];
    const names: string[] = [];
    for (const o of await this.#subkeyOffsets(k.subkeyList)) names.push((await this.#key(o)).name);
    return names;
  }

  /** All values of a key by name (case preserved), or null when the key is absent. */
  async values(path: string): Promise<Map<string, HiveValue> | null> {
    const off = await this.#find(path);
    if (off === null) return null;
    const k = await this.#key(off);
    const out = new Map<string, HiveValue>();
    if (k.values === 0) return out;
    if (k.values > MAX_VALUES) throw bad('a key has too many values');
    const list = await this.#cell(k.valueList);
    if (k.values * 4 > list.length) throw bad('a value list is truncated');
    for (let i = 0; i < k.values; i++) {
      const v = await this.#cell(list.readUInt32LE(i * 4));
      if (v.length < 20 || v.toString('latin1', 0, 2) !== 'vk')
        throw bad('a value cell is invalid');
      const nameLen = v.readUInt16LE(2);
      const rawSize = v.readUInt32LE(4);
      const dataOff = v.readUInt32LE(8);
      const type = v.readUInt32LE(12);
      const flags = v.readUInt16LE(16);
      if (20 + nameLen > v.length) throw bad('a value name lies outside its cell');
      const name =
        flags & 1
          ? v.toString('latin1', 20, 20 + nameLen)
          : v.toString('utf16le', 20, 20 + nameLen);
      const inline = (rawSize & 0x80000000) !== 0;
      const size = rawSize & 0x7fffffff;
      if (size > MAX_VALUE_BYTES) throw bad('a value is too large', { size });
      let data: Buffer;
      if (inline) {
        if (size > 4) throw bad('an inline value is larger than 4 bytes');
        data = v.subarray(8, 8 + size);
      } else if (size === 0) {
        data = Buffer.alloc(0);
      } else {
        const d = await this.#cell(dataOff);
        if (d.toString('latin1', 0, 2) === 'db' && size > 16344)
          data = await this.#bigData(d, size);
        else {
          if (size > d.length) throw bad('a value lies outside its cell');
          data = d.subarray(0, size);
        }
      }
      out.set(name, decode(type, data));
    }
    return out;
  }

  async #bigData(db: Buffer, size: number): Promise<Buffer> {
    const n = db.readUInt16LE(2);
    const segs = await this.#cell(db.readUInt32LE(4));
    if (n * 4 > segs.length) throw bad('a big-data segment list is truncated');
    const parts: Buffer[] = [];
    let got = 0;
    for (let i = 0; i < n && got < size; i++) {
      const s = await this.#cell(segs.readUInt32LE(i * 4));
      const take = Math.min(s.length, 16344, size - got);
      parts.push(s.subarray(0, take));
      got += take;
    }
    return Buffer.concat(parts);
  }
}

function utf16(b: Buffer): string {
  return b.toString('utf16le', 0, b.length - (b.length % 2)).replace(/\0+$/, '');
}

function decode(type: number, data: Buffer): HiveValue {
  switch (type) {
    case 1: // REG_SZ
    case 2: // REG_EXPAND_SZ
      return utf16(data);
    case 4: // REG_DWORD
      return data.length >= 4 ? data.readUInt32LE(0) : 0;
    case 5: // REG_DWORD_BIG_ENDIAN
      return data.length >= 4 ? data.readUInt32BE(0) : 0;
    case 7: // REG_MULTI_SZ
      return utf16(data)
        .split('\0')
        .filter((s) => s !== '');
    case 11: // REG_QWORD
      return data.length >= 8 ? data.readBigUInt64LE(0) : 0n;
    default:
      return Buffer.from(data);
  }
}
