import { type ByteSource, readSourceInto } from '../../byte-source.js';
import { ExtentBuilder } from '../../extents.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { readOutOfRange } from '../../read-range.js';
import type { DiskImage, Extent, ExtentKind, ImageWarning } from '../../types.js';
import { SUBCLUSTERS } from './constants.js';
import { inflateCluster, zstdCluster } from './decompress.js';
import type { Qcow2Header } from './header.js';
import { TableCache } from './table-cache.js';
import {
  decodeL2,
  KIND_COMPRESSED,
  KIND_DATA,
  KIND_HOLE,
  KIND_MIXED,
  KIND_ZERO,
  type L2Table,
  type TableContext,
} from './tables.js';

/** A piece of a read: a guest range and where its bytes come from. */
interface Piece {
  /** Guest offset and length. */
  off: number;
  len: number;
  kind: 'data' | 'compressed';
  /** data: host offset of `off`; compressed: first byte of the compressed data. */
  host: number;
  /** compressed: bytes of compressed data, and the guest offset of its cluster. */
  clen: number;
  cluster: number;
}

/** Compressed reads closer than this are fetched with one source read. */
const COMPRESSED_GAP = 64 * 1024;
/** Largest single source read that gathers several compressed clusters. */
const COMPRESSED_SPAN = 8 * 1024 * 1024;
/** Decompressed clusters kept for reads that cut a cluster in parts. */
const DECOMPRESSED_CACHE = 4;

/** An open qcow2 image: reads through the active L1/L2 tables only. */
export class Qcow2Image implements DiskImage {
  readonly format = 'qcow2' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  readonly #header: Qcow2Header;
  readonly #l1: Float64Array;
  readonly #ctx: TableContext;
  readonly #tables = new TableCache<L2Table>(LIMITS.maxTableCacheBytes);
  readonly #clusters = new Map<number, Promise<Buffer>>();

  constructor(
    source: ByteSource,
    header: Qcow2Header,
    l1: Float64Array,
    warnings: readonly ImageWarning[],
  ) {
    this.source = source;
    this.virtualSize = header.size;
    this.warnings = warnings;
    this.#header = header;
    this.#l1 = l1;
    this.#ctx = { header, fileSize: source.size, name: source.name };
  }

  /** The decoded L2 table of L1 entry `i`, or undefined when unallocated. */
  #table(i: number, signal?: AbortSignal): Promise<L2Table> | undefined {
    const off = this.#l1[i] ?? 0;
    if (off === 0) return undefined;
    return this.#tables.get(i, async () => {
      const buf = await this.source.read(off, this.#header.clusterSize, signal);
      return decodeL2(buf, i, this.#ctx);
    });
  }

  /** The parts of [offset, offset+length) that hold bytes (holes and zeros are left out). */
  async #pieces(offset: number, length: number, signal?: AbortSignal): Promise<Piece[]> {
    const h = this.#header;
    const cs = h.clusterSize;
    const sc = cs / SUBCLUSTERS;
    const end = offset + length;
    const out: Piece[] = [];
    const add = (off: number, len: number, host: number): void => {
      const a = Math.max(off, offset);
      const b = Math.min(off + len, end);
      if (b <= a) return;
      const prev = out[out.length - 1];
      if (
        prev !== undefined &&
        prev.kind === 'data' &&
        prev.off + prev.len === a &&
        prev.host + prev.len === host + (a - off)
      ) {
        prev.len += b - a;
        return;
      }
      out.push({ off: a, len: b - a, kind: 'data', host: host + (a - off), clen: 0, cluster: 0 });
    };
    const span = cs * h.l2Entries;
    for (let i = Math.floor(offset / span); i * span < end; i++) {
      throwIfAborted(signal);
      const pending = this.#table(i, signal);
      if (pending === undefined) continue;
      const t = await pending;
      const j0 = Math.max(0, Math.floor((offset - i * span) / cs));
      const j1 = Math.min(t.kind.length, Math.ceil((end - i * span) / cs));
      for (let j = j0; j < j1; j++) {
        const g = i * span + j * cs;
        const k = t.kind[j]!;
        if (k === KIND_DATA) add(g, cs, t.host[j]!);
        else if (k === KIND_COMPRESSED) {
          const a = Math.max(g, offset);
          const b = Math.min(g + cs, end);
          out.push({
            off: a,
            len: b - a,
            kind: 'compressed',
            host: t.host[j]!,
            clen: t.clen![j]!,
            cluster: g,
          });
        } else if (k === KIND_MIXED) {
          const abits = t.alloc![j]!;
          for (let s = 0; s < SUBCLUSTERS; s++) {
            if ((abits >>> s) & 1) add(g + s * sc, sc, t.host[j]! + s * sc);
          }
        }
      }
    }
    return out;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    throwIfAborted(signal);
    const pieces = await this.#pieces(offset, length, signal);
    const only = pieces[0];
    if (pieces.length === 1 && only!.kind === 'data' && only!.len === length) {
      return this.source.read(only!.host, length, signal);
    }
    const out = Buffer.allocUnsafe(length);
    await this.#fill(out, offset, pieces, signal);
    return out;
  }

  async readInto(target: Buffer, offset: number, signal?: AbortSignal): Promise<void> {
    readOutOfRange(this, offset, target.length);
    throwIfAborted(signal);
    await this.#fill(target, offset, await this.#pieces(offset, target.length, signal), signal);
  }

  /** Reads `pieces` (in guest order) straight into `out`, which starts at guest `offset`; zero-fills the rest. */
  async #fill(
    out: Buffer,
    offset: number,
    pieces: readonly Piece[],
    signal?: AbortSignal,
  ): Promise<void> {
    const jobs: Promise<void>[] = [];
    const compressed: Piece[] = [];
    let cursor = offset;
    for (const p of pieces) {
      if (p.off > cursor) out.fill(0, cursor - offset, p.off - offset);
      cursor = p.off + p.len;
      if (p.kind === 'data') {
        const at = p.off - offset;
        jobs.push(readSourceInto(this.source, out.subarray(at, at + p.len), p.host, signal));
      } else compressed.push(p);
    }
    if (cursor < offset + out.length) out.fill(0, cursor - offset);
    jobs.push(this.#readCompressed(compressed, out, offset, signal));
    await Promise.all(jobs);
  }

  /** Reads compressed pieces, fetching neighbouring compressed data in one source read. */
  async #readCompressed(
    pieces: Piece[],
    out: Buffer,
    base: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const jobs: Promise<void>[] = [];
    let group: Piece[] = [];
    let gStart = 0;
    let gEnd = 0;
    const flush = (): void => {
      if (group.length === 0) return;
      const members = group;
      const start = gStart;
      const raw = this.source.read(start, gEnd - start, signal);
      raw.catch(() => {});
      for (const p of members) {
        jobs.push(
          this.#cluster(p, async () =>
            (await raw).subarray(p.host - start, p.host - start + p.clen),
          ).then((c) => {
            c.copy(out, p.off - base, p.off - p.cluster, p.off - p.cluster + p.len);
          }),
        );
      }
      group = [];
    };
    for (const p of pieces) {
      if (this.#clusters.has(p.host)) {
        jobs.push(
          this.#cluster(p, () => this.source.read(p.host, p.clen, signal)).then((c) => {
            c.copy(out, p.off - base, p.off - p.cluster, p.off - p.cluster + p.len);
          }),
        );
        continue;
      }
      const pEnd = p.host + p.clen;
      if (
        group.length > 0 &&
        p.host >= gStart &&
        p.host <= gEnd + COMPRESSED_GAP &&
        Math.max(gEnd, pEnd) - gStart <= COMPRESSED_SPAN
      ) {
        group.push(p);
        gEnd = Math.max(gEnd, pEnd);
        continue;
      }
      flush();
      group = [p];
      gStart = p.host;
      gEnd = pEnd;
    }
    flush();
    await Promise.all(jobs);
  }

  /** One decompressed cluster, from a small cache keyed by its host offset. */
  #cluster(p: Piece, data: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.#clusters.get(p.host);
    if (hit !== undefined) {
      this.#clusters.delete(p.host);
      this.#clusters.set(p.host, hit);
      return hit;
    }
    const cs = this.#header.clusterSize;
    const name = this.source.name;
    const zstd = this.#header.compressionType === 'zstd';
    const promise = data().then((raw) =>
      zstd ? zstdCluster(raw, cs, name) : inflateCluster(raw, cs, name),
    );
    promise.catch(() => {
      if (this.#clusters.get(p.host) === promise) this.#clusters.delete(p.host);
    });
    this.#clusters.set(p.host, promise);
    while (this.#clusters.size > DECOMPRESSED_CACHE) {
      const oldest = this.#clusters.keys().next().value as number;
      this.#clusters.delete(oldest);
    }
    return promise;
  }

  async *extents(signal?: AbortSignal): AsyncGenerator<Extent> {
    const h = this.#header;
    const cs = h.clusterSize;
    const sc = cs / SUBCLUSTERS;
    const span = cs * h.l2Entries;
    const size = this.virtualSize;
    const b = new ExtentBuilder();
    const push = (off: number, len: number, kind: ExtentKind): void => {
      b.push(off, Math.min(len, size - off), kind);
    };
    for (let i = 0; i < h.l1Needed; i++) {
      throwIfAborted(signal);
      const base = i * span;
      const pending = this.#table(i, signal);
      if (pending === undefined) {
        push(base, span, 'hole');
      } else {
        const t = await pending;
        for (let j = 0; j < t.kind.length; j++) {
          const g = base + j * cs;
          const k = t.kind[j]!;
          if (k === KIND_HOLE) push(g, cs, 'hole');
          else if (k === KIND_ZERO) push(g, cs, 'zero');
          else if (k === KIND_DATA || k === KIND_COMPRESSED) push(g, cs, 'data');
          else {
            const abits = t.alloc![j]!;
            const zbits = t.zero![j]!;
            for (let s = 0; s < SUBCLUSTERS && g + s * sc < size; s++) {
              const kind = (abits >>> s) & 1 ? 'data' : (zbits >>> s) & 1 ? 'zero' : 'hole';
              push(g + s * sc, sc, kind);
            }
          }
        }
      }
      yield* b.take();
    }
    yield* b.finish();
  }

  details(): Record<string, unknown> {
    const h = this.#header;
    return {
      version: h.version,
      compat: h.version === 3 ? '1.1' : '0.10',
      clusterSize: h.clusterSize,
      compressionType: h.compressionType,
      extendedL2: h.extendedL2,
      refcountBits: 2 ** h.refcountOrder,
      snapshots: h.nbSnapshots,
      dirty: h.dirty,
      lazyRefcounts: h.lazyRefcounts,
      l1Size: h.l1Size,
      headerLength: h.headerLength,
      extensions: [...h.extensions],
    };
  }

  async close(): Promise<void> {
    this.#tables.clear();
    this.#clusters.clear();
    await this.source.close();
  }
}
