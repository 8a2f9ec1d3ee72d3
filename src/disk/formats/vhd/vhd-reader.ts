import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { ExtentBuilder } from '../../extents.js';
import { throwIfAborted } from '../../file-source.js';
import { readOutOfRange } from '../../read-range.js';
import type {
  DiskImage,
  Extent,
  FormatDetails,
  FormatReader,
  ImageWarning,
  OpenOptions,
} from '../../types.js';
import { VhdBat } from './bat.js';
import { DISK_FIXED, FOOTER_COOKIE, FOOTER_SIZE, VHD_EPOCH } from './constants.js';
import { readDynamicHeader } from './dynamic-header.js';
import {
  chooseVirtualSize,
  hasFooterCookie,
  parseFooter,
  type SizeChoice,
  type VhdFooter,
} from './footer.js';

/** Blocks walked per step of `extents()` before yielding. */
const EXTENT_STEP = 65536;
/** Bytes of a fixed disk examined per SEEK_DATA query. */
const MAP_WINDOW = 1024 * 1024 * 1024;

/** A run of a requested range: file bytes at `fileOffset`, or zeros. */
interface Run {
  start: number;
  length: number;
  fileOffset: number;
  data: boolean;
}

/**
 * A fixed or dynamic VHD. A fixed disk is its first `virtualSize` bytes; a
 * dynamic one maps each block through the BAT. As qemu does, a stored block
 * reads from its data whatever its sector bitmap says.
 */
export class VhdImage implements DiskImage {
  readonly format = 'vhd' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  readonly #footer: VhdFooter;
  readonly #size: SizeChoice;
  readonly #bat: VhdBat | null;

  constructor(
    source: ByteSource,
    parts: { footer: VhdFooter; size: SizeChoice; bat: VhdBat | null },
    warnings: readonly ImageWarning[],
  ) {
    this.source = source;
    this.virtualSize = parts.size.virtualSize;
    this.warnings = warnings;
    this.#footer = parts.footer;
    this.#size = parts.size;
    this.#bat = parts.bat;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    readOutOfRange(this, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const bat = this.#bat;
    if (bat === null) return this.source.read(offset, length, signal);
    const bs = bat.blockSize;
    const end = offset + length;
    const runs: Run[] = [];
    await bat.visit(
      Math.floor(offset / bs),
      Math.ceil(end / bs),
      (block, dataOffset) => {
        const from = Math.max(offset, block * bs);
        const to = Math.min(end, (block + 1) * bs);
        const data = dataOffset >= 0;
        const at = data ? dataOffset + (from - block * bs) : 0;
        const last = runs[runs.length - 1];
        if (
          last !== undefined &&
          last.data === data &&
          (!data || last.fileOffset + last.length === at)
        ) {
          last.length += to - from;
        } else {
          runs.push({ start: from - offset, length: to - from, fileOffset: at, data });
        }
      },
      signal,
    );
    const only = runs[0];
    if (runs.length === 1 && only !== undefined) {
      return only.data ? this.source.read(only.fileOffset, length, signal) : Buffer.alloc(length);
    }
    const out = Buffer.alloc(length);
    await Promise.all(
      runs
        .filter((r) => r.data)
        .map(async (r) => {
          const buf = await this.source.read(r.fileOffset, r.length, signal);
          buf.copy(out, r.start);
        }),
    );
    return out;
  }

  async *extents(signal?: AbortSignal): AsyncGenerator<Extent> {
    const bat = this.#bat;
    if (bat === null) {
      yield* this.#fixedExtents(signal);
      return;
    }
    const b = new ExtentBuilder();
    const bs = bat.blockSize;
    const blocks = Math.ceil(this.virtualSize / bs);
    for (let first = 0; first < blocks; first += EXTENT_STEP) {
      const end = Math.min(blocks, first + EXTENT_STEP);
      await bat.visit(
        first,
        end,
        (block, dataOffset) => {
          const len = Math.min(bs, this.virtualSize - block * bs);
          b.push(block * bs, len, dataOffset >= 0 ? 'data' : 'hole');
        },
        signal,
      );
      yield* b.take();
    }
    yield* b.finish();
  }

  /** A fixed disk is data throughout, except where its file is sparse. */
  async *#fixedExtents(signal?: AbortSignal): AsyncGenerator<Extent> {
    const b = new ExtentBuilder();
    for (let off = 0; off < this.virtualSize; off += MAP_WINDOW) {
      throwIfAborted(signal);
      const len = Math.min(MAP_WINDOW, this.virtualSize - off);
      const ranges =
        this.source.dataRanges === undefined
          ? [{ offset: off, length: len }]
          : await this.source.dataRanges(off, len);
      for (const r of ranges) {
        const from = Math.max(r.offset, b.position);
        const to = Math.min(r.offset + r.length, off + len);
        if (to <= from) continue;
        b.push(b.position, from - b.position, 'hole');
        b.push(from, to - from, 'data');
      }
      b.push(b.position, off + len - b.position, 'hole');
      yield* b.take();
    }
    yield* b.finish();
  }

  details(): FormatDetails {
    const f = this.#footer;
    const v = f.creatorVersion;
    return {
      subformat: f.diskType === DISK_FIXED ? 'fixed' : 'dynamic',
      creator: f.creatorApp.replace(/[\0 ]+$/, ''),
      creatorVersion: `${v >>> 16}.${v & 0xffff}`,
      creatorHost: f.creatorHost.replace(/[\0 ]+$/, ''),
      created: new Date((VHD_EPOCH + f.timestamp) * 1000).toISOString(),
      currentSize: f.currentSize,
      originalSize: f.originalSize,
      chsSize: this.#size.chsSize,
      sizeFrom: this.#size.source,
      geometry: { ...f.geometry },
      blockSize: this.#bat?.blockSize ?? null,
      storedBlocks: this.#bat?.storedBlocks ?? null,
      uuid: f.uuid,
      savedState: f.savedState,
    };
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

function mismatch(name: string, reason: string): FerryError {
  return new FerryError('FERRY_VHD_FOOTER_MISMATCH', `Cannot open ${name}: ${reason}`, {
    hint: 'AWS refuses such an image with "Footers not identical"',
  });
}

/**
 * Finds the footer. Every VHD ends with one; a dynamic VHD also starts with
 * an identical copy. A file that starts with a footer but does not end with
 * one was cut short. A fixed VHD whose first sector also holds a footer is
 * refused: qemu reads such a file as dynamic (it looks at offset 0 first).
 */
async function readFooter(source: ByteSource, signal?: AbortSignal): Promise<VhdFooter> {
  const name = source.name;
  if (source.size < FOOTER_SIZE) {
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot open ${name}: ${source.size} bytes cannot hold a VHD footer`,
      { details: { size: source.size } },
    );
  }
  const tail = await source.read(source.size - FOOTER_SIZE, FOOTER_SIZE, signal);
  const head =
    source.size >= 2 * FOOTER_SIZE ? await source.read(0, FOOTER_SIZE, signal) : Buffer.alloc(0);
  const headCopy = hasFooterCookie(head);
  if (!hasFooterCookie(tail)) {
    if (!headCopy) {
      throw new FerryError(
        'FERRY_VHD_BAD_FOOTER',
        `Cannot open ${name}: no VHD footer (cookie "${FOOTER_COOKIE}") at its start or end`,
      );
    }
    parseFooter(head, name);
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot open ${name}: it starts with a VHD footer but does not end with one (the file is truncated)`,
      { details: { size: source.size } },
    );
  }
  const footer = parseFooter(tail, name);
  if (footer.diskType === DISK_FIXED) {
    if (headCopy) {
      throw mismatch(
        name,
        'a fixed VHD whose first sector is also a VHD footer (qemu would read it as a dynamic VHD)',
      );
    }
  } else if (!headCopy) {
    throw mismatch(name, 'the dynamic VHD lacks the footer copy at offset 0');
  } else if (!head.equals(tail)) {
    throw mismatch(name, 'the footer copies at the start and the end of the dynamic VHD differ');
  }
  return footer;
}

/** Opens a fixed or dynamic VHD. */
export async function openVhd(source: ByteSource, options: OpenOptions): Promise<VhdImage> {
  const { signal } = options;
  const warnings: ImageWarning[] = [];
  const footer = await readFooter(source, signal);
  const size = chooseVirtualSize(footer, source.name, warnings);
  if (footer.savedState) {
    warnings.push({
      code: 'VHD_SAVED_STATE',
      message: 'The VHD belongs to a virtual machine in a saved state',
    });
  }
  if (footer.diskType === DISK_FIXED) {
    const stored = source.size - FOOTER_SIZE;
    if (size.virtualSize > stored) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot open ${source.name}: the fixed VHD holds ${stored} bytes of data but its footer says ${size.virtualSize}`,
        { details: { virtualSize: size.virtualSize, stored } },
      );
    }
    return new VhdImage(source, { footer, size, bat: null }, warnings);
  }
  const header = await readDynamicHeader(source, footer.dataOffset, size.virtualSize, signal);
  const bat = await VhdBat.open(source, header, signal);
  return new VhdImage(source, { footer, size, bat }, warnings);
}

export const vhdReader: FormatReader = {
  name: 'vhd',
  probe: (head, tail, size) =>
    head.toString('latin1', 0, 8) === FOOTER_COOKIE ||
    (size >= FOOTER_SIZE &&
      tail.toString('latin1', tail.length - FOOTER_SIZE, tail.length - FOOTER_SIZE + 8) ===
        FOOTER_COOKIE),
  open: openVhd,
};
