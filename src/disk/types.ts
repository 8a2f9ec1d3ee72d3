import type { ByteSource } from './byte-source.js';

/** Disk image formats ferry reads. */
export const FORMAT_NAMES = ['raw', 'qcow2', 'vmdk', 'vhd', 'vhdx', 'vdi', 'ova'] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];

/** Formats ferry writes (VDI is read-only). */
export const WRITABLE_FORMATS = ['raw', 'qcow2', 'vmdk', 'vhd', 'vhdx', 'ova'] as const;
export type WritableFormat = (typeof WRITABLE_FORMATS)[number];

/**
 * What a range of the virtual disk holds:
 * - `data`: stored bytes (which may still happen to be zeros);
 * - `zero`: the format says the range reads as zeros (qcow2 zero clusters, VHDX ZERO blocks...);
 * - `hole`: nothing is stored; the range reads as zeros because there is no backing image.
 */
export type ExtentKind = 'data' | 'zero' | 'hole';

export interface Extent {
  readonly offset: number;
  readonly length: number;
  readonly kind: ExtentKind;
}

/** A non-fatal oddity noticed while opening an image (strict callers may refuse it). */
export interface ImageWarning {
  readonly code: string;
  readonly message: string;
}

/** JSON-serialisable, format-specific facts (qcow2 version, vmdk createType, ova disks...). */
export type FormatDetails = Readonly<Record<string, unknown>>;

/**
 * A virtual block device read through a format. Offsets are virtual-disk byte offsets.
 * Every image is opened read-only and never opens a file the image names,
 * except a VMDK flat extent in the same directory when the caller allows it.
 */
export interface DiskImage {
  readonly format: FormatName;
  /** Size of the virtual disk in bytes. */
  readonly virtualSize: number;
  /** The bytes the image is stored in. */
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  /**
   * Reads `length` bytes of the virtual disk at `offset`. Holes and zero
   * extents read as zeros. Throws FERRY_READ_OUT_OF_RANGE past `virtualSize`.
   */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Capability: fills `target` with `target.length` bytes of the virtual disk
   * at `offset`, reading stored data straight into it (no intermediate
   * buffer). Same errors as `read`.
   */
  readInto?(target: Buffer, offset: number, signal?: AbortSignal): Promise<void>;
  /**
   * The allocation map: extents in increasing order that together cover
   * [0, virtualSize) exactly, adjacent extents of the same kind merged.
   * Walks metadata only; it reads no guest data.
   */
  extents(signal?: AbortSignal): AsyncIterable<Extent>;
  /** Format-specific facts for `ferry info`. */
  details(): FormatDetails;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly signal?: AbortSignal;
  /**
   * Allow a VMDK descriptor whose single FLAT extent is a plain file name in
   * the descriptor's own directory. Off by default (CVE-2022-47951).
   */
  readonly allowFlatExtents?: boolean;
  /** Check the digests of an OVA manifest while opening (default true). */
  readonly verifyManifest?: boolean;
  /**
   * Opens a file that sits next to the image, by bare file name. Set by
   * openImage() for file sources; absent elsewhere, so images can never reach other files.
   */
  readonly openSibling?: (name: string) => Promise<ByteSource>;
}

/** A format reader: detects its format by magic bytes and opens it over a byte source. */
export interface FormatReader {
  readonly name: FormatName;
  /**
   * Says whether the bytes look like this format. `head` is the first
   * min(size, PROBE_HEAD_BYTES) bytes, `tail` the last min(size, 512) bytes.
   */
  probe(head: Buffer, tail: Buffer, size: number): boolean;
  open(source: ByteSource, options: OpenOptions): Promise<DiskImage>;
}

export interface WriterOptions {
  readonly virtualSize: number;
  /** Compress data where the format can (qcow2 clusters; VMDK stream is always compressed). */
  readonly compress?: boolean;
  /** VHD only: `dynamic` (default) or `fixed` (size rounded up to 1 MiB, as Azure requires). */
  readonly vhdSubformat?: 'fixed' | 'dynamic';
  /** Replace an existing file at the destination. */
  readonly overwrite?: boolean;
  /**
   * Large aligned writes bypass the page cache (O_DIRECT; see OutputFile):
   * for an image that is not read again soon. Default: buffered.
   */
  readonly directWrites?: boolean;
  readonly signal?: AbortSignal;
}

export interface WriteResult {
  /** Bytes of the finished file. */
  readonly fileSize: number;
  /** Virtual size of the written disk (may be rounded up by the format). */
  readonly virtualSize: number;
}

/**
 * A sink for a virtual disk. The converter calls `write` in strictly
 * increasing offset order, each call at a multiple of WRITE_CHUNK (2 MiB) and
 * WRITE_CHUNK long except the last chunk of the disk; ranges never written
 * read back as zeros. A writer may skip all-zero units. Output goes to a
 * temporary file beside the destination and is renamed into place by
 * `finish`; `abort` removes it, so a failed write loses nothing.
 */
export interface DiskWriter {
  readonly format: WritableFormat;
  /**
   * Takes `data` at `offset` (offsets increase). The writer may keep `data`
   * until `released` resolves (or, without `released`, until `finish`).
   */
  write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void>;
  /**
   * Resolves once the writer holds no buffer passed to `write` so far (each is
   * written, or was never needed), whether or not the writes succeeded; a
   * failure is reported by the next `write` or `finish`. Writers that keep
   * buffers longer leave it out, and callers then give each write a fresh buffer.
   */
  released?(): Promise<void>;
  finish(signal?: AbortSignal): Promise<WriteResult>;
  abort(): Promise<void>;
}

export interface FormatWriter {
  readonly name: WritableFormat;
  create(path: string, options: WriterOptions): Promise<DiskWriter>;
}
