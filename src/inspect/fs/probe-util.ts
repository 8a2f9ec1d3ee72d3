export { isPowerOfTwo } from '../../disk/binary.js';

import type { FsType } from './fs-driver.js';

/** What a filesystem (or container) signature says about a volume. */
export interface FsProbe {
  readonly type: FsType;
  /** In the form blkid prints it (RFC 4122 dashed lowercase, 'ABCD-1234' for FAT, 16 hex digits for NTFS...). */
  readonly uuid: string | null;
  readonly label: string | null;
  /** Bytes the filesystem says it spans, or null when it does not say (LUKS) or says something absurd. */
  readonly size: number | null;
  /** The block size blkid reports as BLOCK_SIZE (filesystem block, or sector for FAT and NTFS). */
  readonly blockSize?: number;
  /** Variant: 'FAT32', '5' (XFS v5), '2' (LUKS2), 'LVM2 001', '1' (swap)... */
  readonly version?: string;
  /** Feature flags, named as the filesystem's own tools name them. */
  readonly features?: string[];
}

/** The bytes a probe may look at: the head of the volume, and bounded reads elsewhere. */
export interface ProbeSource {
  readonly size: number;
  /** The first min(size, PROBE_HEAD_BYTES) bytes. */
  readonly head: Buffer;
  /** Reads [offset, offset+length), or null when that range is not inside the volume. */
  read(offset: number, length: number): Promise<Buffer | null>;
}

export type Prober = (src: ProbeSource) => Promise<FsProbe | null>;

/** Bytes read from the start of a volume for all probes at once. */
export const PROBE_HEAD_BYTES = 4096;

/** A 16-byte UUID stored in byte order (ext, XFS, btrfs, swap), dashed lowercase. */
export function formatUuid(buf: Buffer, offset: number): string {
  const h = buf.toString('hex', offset, offset + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function isZero(buf: Buffer, offset: number, length: number): boolean {
  for (let i = offset; i < offset + length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** A UUID, or null when it is all zeros (blkid omits those too). */
export function uuidOrNull(buf: Buffer, offset: number): string | null {
  return isZero(buf, offset, 16) ? null : formatUuid(buf, offset);
}

/** A NUL-terminated (or full-width) string field; null when empty. */
export function cString(
  buf: Buffer,
  offset: number,
  length: number,
  encoding: BufferEncoding = 'utf8',
): string | null {
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  const s = field.subarray(0, nul === -1 ? field.length : nul).toString(encoding);
  return s.length === 0 ? null : s;
}

/** A space-padded string field (FAT, ISO9660), trimmed; null when blank. */
export function paddedString(
  buf: Buffer,
  offset: number,
  length: number,
  encoding: BufferEncoding = 'latin1',
): string | null {
  const s = buf
    .subarray(offset, offset + length)
    .toString(encoding)
    .replace(/[\s\0]+$/u, '');
  return s.length === 0 ? null : s;
}

/** `count * unit` when it is a safe integer, else null (a corrupt or absurd size field). */
export function safeProduct(count: number | bigint, unit: number): number | null {
  const v = BigInt(count) * BigInt(unit);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
}

export function has(buf: Buffer, offset: number, magic: string | Buffer): boolean {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic;
  return (
    offset >= 0 &&
    offset + m.length <= buf.length &&
    buf.subarray(offset, offset + m.length).equals(m)
  );
}
