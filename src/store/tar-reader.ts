import { FerryError } from '../errors/index.js';
import { decodeTarNumber, tarHeaderChecksums } from '../util/tar-fields.js';

const BLOCK = 512;
/** Largest pax or GNU long-name record read (real ones are a few hundred bytes). */
export const MAX_META_BYTES = 1024 * 1024;

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One archive member, with pax and GNU long-name records already applied. */
export interface TarEntry {
  /** As stored: not yet normalised or checked (the caller does that). */
  readonly path: string;
  readonly type: TarEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Nanoseconds since the epoch, as a decimal string. */
  readonly mtime: string;
  readonly size: number;
  /** link and symlink: the target. */
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** SCHILY.xattr.* pax records: name -> value (base64). */
  readonly xattrs: Record<string, string>;
}

function bad(reason: string, at: number): FerryError {
  return new FerryError('FERRY_TAR_BAD_ARCHIVE', `Cannot read the tar archive: ${reason}`, {
    details: { offset: at },
  });
}

/** Reads exact byte counts from an async chunk stream, keeping at most one chunk beyond. */
class ByteReader {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  #done = false;
  /** Bytes consumed so far (for messages). */
  offset = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n && !this.#done) {
      const r = await this.#it.next();
      if (r.done === true) this.#done = true;
      else this.#buf = this.#buf.length === 0 ? r.value : Buffer.concat([this.#buf, r.value]);
    }
    return this.#buf.length >= n;
  }

  /** Exactly n bytes, or null at a clean end (no bytes left); a partial read is an error. */
  async take(n: number): Promise<Buffer | null> {
    if (!(await this.#fill(n))) {
      if (this.#buf.length === 0) return null;
      throw bad('the archive ends in the middle of a block', this.offset);
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** Streams n bytes in the chunks they arrive in. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill(1))) {
        throw bad('the archive ends inside a member', this.offset);
      }
      const k = Math.min(left, this.#buf.length);
      const out = this.#buf.subarray(0, k);
      this.#buf = this.#buf.subarray(k);
      this.offset += k;
      left -= k;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discard
    }
  }
}

function numeric(raw: Buffer, what: string, at: number): number {
  const v = decodeTarNumber(raw);
  if (typeof v === 'number') return v;
  throw bad(`the ${what} field ${PROBLEM[v]}`, at);
}

const PROBLEM = {
  negative: 'is negative',
  'past-2^53': 'exceeds 2^53',
  'not-octal': 'is not an octal number',
  'too-large': 'is too large',
} as const;

function text(raw: Buffer): string {
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
}

interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: string;
  xattrs: Record<string, string>;
}

/** pax records "<len> <key>=<value>\n"; times become nanosecond strings. */
function parsePax(data: Buffer, at: number): Pax {
  const out: Pax = { xattrs: {} };
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space <= pos || space - pos > 10) throw bad('a pax record has a bad length', at);
    const len = Number(data.toString('latin1', pos, space));
    const end = pos + len;
    if (
      !Number.isSafeInteger(len) ||
      len < space - pos + 3 ||
      end > data.length ||
      data[end - 1] !== 0x0a
    )
      throw bad('a pax record overruns its header', at);
    const rec = data.subarray(space + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw bad('a pax record has no key', at);
    const key = rec.toString('utf8', 0, eq);
    const value = rec.subarray(eq + 1);
    const v = value.toString('utf8');
    const int = (): number => {
      if (!/^[0-9]{1,16}$/.test(v) || !Number.isSafeInteger(Number(v)))
        throw bad(`a pax ${key} is not a number`, at);
      return Number(v);
    };
    if (key === 'path') out.path = v;
    else if (key === 'linkpath') out.linkpath = v;
    else if (key === 'size') out.size = int();
    else if (key === 'uid') out.uid = int();
    else if (key === 'gid') out.gid = int();
    else if (key === 'mtime') {
      const m = /^(-?\d{1,12})(?:\.(\d{1,9}))?$/.exec(v);
      if (m === null) throw bad('a pax mtime is malformed', at);
      out.mtime = (BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))).toString();
    } else if (key.startsWith('SCHILY.xattr.'))
      out.xattrs[key.slice(13)] = value.toString('base64');
    pos = end;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/**
 * Reads a tar stream (ustar, pax, GNU: long names and links, base-256
 * numbers) entry by entry. `onEntry` receives each member and, for files, its
 * contents as a stream it must consume before returning. Checksums are
 * verified; metadata records are capped at MAX_META_BYTES; a global pax
 * header is read and ignored; sparse and multi-volume GNU members are refused.
 */
export async function readTar(
  source: AsyncIterable<Buffer>,
  onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  const r = new ByteReader(source);
  let pax: Pax | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  let count = 0;
  for (;;) {
    if (signal?.aborted)
      throw new FerryError('FERRY_ABORTED', 'Cannot read the tar archive: aborted');
    const at = r.offset;
    const block = await r.take(BLOCK);
    if (block === null) throw bad('the archive has no end-of-archive marker', at);
    if (block.every((b) => b === 0)) break;
    const stored = numeric(block.subarray(148, 156), 'checksum', at);
    const [u, s] = tarHeaderChecksums(block);
    if (stored !== u && stored !== s) throw bad('a header checksum does not match', at);
    const flag = String.fromCharCode(block[156]!);
    const rawSize = numeric(block.subarray(124, 136), 'size', at);
    const padded = Math.ceil(rawSize / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (rawSize > MAX_META_BYTES)
        throw bad(`a metadata record of ${rawSize} bytes exceeds the cap`, at);
      const data = (await r.take(padded)) ?? Buffer.alloc(0);
      const body = data.subarray(0, rawSize);
      if (flag === 'x') pax = parsePax(body, at);
      else if (flag === 'g') parsePax(body, at);
      else if (flag === 'L') longName = text(body);
      else longLink = text(body);
      continue;
    }
    const type = TYPES[flag];
    if (type === undefined)
      throw bad(`member type "${flag.replace(/[^\x20-\x7e]/g, '?')}" is not supported`, at);
    const magic = block.toString('latin1', 257, 263);
    const prefix = magic === 'ustar\0' ? text(block.subarray(345, 500)) : '';
    const name = text(block.subarray(0, 100));
    const size = pax?.size ?? rawSize;
    const entry: TarEntry = {
      path: pax?.path ?? longName ?? (prefix === '' ? name : `${prefix}/${name}`),
      type,
      mode: numeric(block.subarray(100, 108), 'mode', at) & 0o7777,
      uid: pax?.uid ?? numeric(block.subarray(108, 116), 'uid', at),
      gid: pax?.gid ?? numeric(block.subarray(116, 124), 'gid', at),
      mtime:
        pax?.mtime ??
        (BigInt(numeric(block.subarray(136, 148), 'mtime', at)) * 1_000_000_000n).toString(),
      size: type === 'file' ? size : 0,
      linkname: pax?.linkpath ?? longLink ?? text(block.subarray(157, 257)),
      devmajor:
        type === 'char' || type === 'block' ? numeric(block.subarray(329, 337), 'devmajor', at) : 0,
      devminor:
        type === 'char' || type === 'block' ? numeric(block.subarray(337, 345), 'devminor', at) : 0,
      xattrs: pax?.xattrs ?? {},
    };
    pax = null;
    longName = null;
    longLink = null;
    count++;
    // Only files carry data (a hard link's size field may repeat its target's; none follows).
    const dataBytes = type === 'file' ? size : 0;
    const state = { left: dataBytes };
    const body = (async function* () {
      for await (const chunk of r.stream(dataBytes)) {
        state.left -= chunk.length;
        yield chunk;
      }
    })();
    await onEntry(entry, body);
    // Whatever the consumer left, and the padding to the next block.
    await r.skip(state.left + (Math.ceil(dataBytes / BLOCK) * BLOCK - dataBytes));
  }
  return count;
}
