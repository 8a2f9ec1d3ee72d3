import { randomBytes } from 'node:crypto';
import { FerryError } from '../../../errors/index.js';
import { u64be } from '../../binary.js';
import type { ImageWarning } from '../../types.js';
import {
  CHS_CREATORS,
  CURRENT_SIZE_CREATORS,
  DISK_DIFFERENCING,
  DISK_DYNAMIC,
  DISK_FIXED,
  F,
  FEATURES_RESERVED,
  FOOTER_COOKIE,
  FOOTER_SIZE,
  FORMAT_VERSION,
  MAX_CHS_SECTORS,
  MAX_SECTORS,
  SECTOR,
  VHD_EPOCH,
} from './constants.js';

export interface Geometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** A checked hard disk footer. */
export interface VhdFooter {
  readonly diskType: typeof DISK_FIXED | typeof DISK_DYNAMIC;
  readonly features: number;
  /** Offset of the dynamic header (dynamic disks only; 0 for fixed ones). */
  readonly dataOffset: number;
  readonly timestamp: number;
  /** The four bytes of the creator application, e.g. "qem2", "win ", "tap\0". */
  readonly creatorApp: string;
  readonly creatorVersion: number;
  readonly creatorHost: string;
  /** Bytes, or the decimal string when it exceeds 2^53 (informational only). */
  readonly originalSize: number | string;
  readonly currentSize: number;
  readonly geometry: Geometry;
  readonly uuid: string;
  readonly savedState: boolean;
}

/** The VHD checksum: one's complement of the byte sum, skipping the 4-byte field at `skip`. */
export function vhdChecksum(buf: Buffer, skip: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i >= skip && i < skip + 4) continue;
    sum += buf[i]!;
  }
  return ~sum >>> 0;
}

/** Writes the checksum of `buf` into its checksum field at `at`. */
export function sealChecksum(buf: Buffer, at: number): void {
  buf.writeUInt32BE(vhdChecksum(buf, at), at);
}

function printable(buf: Buffer, from: number, to: number): string {
  return buf.toString('latin1', from, to);
}

function uuidString(buf: Buffer): string {
  const h = buf.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function badFooter(name: string, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError('FERRY_VHD_BAD_FOOTER', `Cannot open ${name}: ${reason}`, { details });
}

/** True when `buf` (512 bytes) begins with the footer cookie. */
export function hasFooterCookie(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString('latin1', 0, 8) === FOOTER_COOKIE;
}

/**
 * Parses and checks a 512-byte footer: cookie, checksum, format version and
 * disk type. A differencing disk is refused (ferry never opens a parent).
 */
export function parseFooter(buf: Buffer, name: string): VhdFooter {
  if (buf.length < FOOTER_SIZE || !hasFooterCookie(buf)) {
    throw badFooter(name, 'no VHD footer (cookie "conectix") at the end of the file');
  }
  const stored = buf.readUInt32BE(F.checksum);
  const computed = vhdChecksum(buf.subarray(0, FOOTER_SIZE), F.checksum);
  if (stored !== computed) {
    throw new FerryError(
      'FERRY_VHD_BAD_CHECKSUM',
      `Cannot open ${name}: the VHD footer checksum is 0x${stored.toString(16)}, expected 0x${computed.toString(16)}`,
      { details: { stored, computed } },
    );
  }
  const version = buf.readUInt32BE(F.version);
  if (version !== FORMAT_VERSION) {
    throw badFooter(name, `the VHD footer has format version 0x${version.toString(16)}`, {
      version,
    });
  }
  const diskType = buf.readUInt32BE(F.diskType);
  if (diskType === DISK_DIFFERENCING) {
    throw new FerryError(
      'FERRY_VHD_DIFFERENCING',
      `Cannot open ${name}: it is a differencing VHD, whose contents depend on a parent image ferry never opens`,
      { details: { diskType }, hint: 'Merge the differencing disk into its parent first' },
    );
  }
  if (diskType !== DISK_FIXED && diskType !== DISK_DYNAMIC) {
    throw badFooter(name, `the VHD disk type ${diskType} is not fixed (2) or dynamic (3)`, {
      diskType,
    });
  }
  const currentSize = u64be(buf, F.currentSize, 'VHD current size');
  const originalBig = buf.readBigUInt64BE(F.originalSize);
  return {
    diskType,
    features: buf.readUInt32BE(F.features),
    dataOffset:
      diskType === DISK_DYNAMIC
        ? u64be(buf, F.dataOffset, 'VHD dynamic header offset', 'FERRY_VHD_BAD_HEADER')
        : 0,
    timestamp: buf.readUInt32BE(F.timestamp),
    creatorApp: printable(buf, F.creatorApp, F.creatorApp + 4),
    creatorVersion: buf.readUInt32BE(F.creatorVersion),
    creatorHost: printable(buf, F.creatorHost, F.creatorHost + 4),
    originalSize:
      originalBig <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(originalBig) : originalBig.toString(),
    currentSize,
    geometry: {
      cylinders: buf.readUInt16BE(F.cylinders),
      heads: buf.readUInt8(F.heads),
      sectorsPerTrack: buf.readUInt8(F.sectorsPerTrack),
    },
    uuid: uuidString(buf.subarray(F.uuid, F.uuid + 16)),
    savedState: buf.readUInt8(F.savedState) !== 0,
  };
}

export function chsSectors(g: Geometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack;
}

/** How the virtual size was derived, and the two candidate sizes. */
export interface SizeChoice {
  readonly virtualSize: number;
  readonly source: 'chs' | 'current-size';
  readonly chsSize: number;
}

function showCreator(app: string): string {
  return JSON.stringify(app).slice(1, -1);
}

/**
 * The virtual size by qemu's rule (block/vpc.c): images made by Virtual PC
 * ("vpc ") and old qemu ("qemu") are as large as their CHS geometry, unless
 * the geometry is the maximum one; every other creator's images are as large
 * as the footer's current_size (qemu 10 and later; Hyper-V, Azure, Xen,
 * disk2vhd). qemu before 10.0 also used CHS for creators it did not know,
 * so that case, and any CHS/current_size disagreement that changes the
 * size, is reported as a warning. Refuses sizes over qemu's 2040 GiB.
 */
export function chooseVirtualSize(
  footer: VhdFooter,
  name: string,
  warnings: ImageWarning[],
): SizeChoice {
  const chs = chsSectors(footer.geometry);
  const chsSize = chs * SECTOR;
  const currentSectors = Math.floor(footer.currentSize / SECTOR);
  const useChs = CHS_CREATORS.includes(footer.creatorApp) && chs !== MAX_CHS_SECTORS;
  const sectors = useChs ? chs : currentSectors;
  const app = showCreator(footer.creatorApp);
  if (useChs && chs !== currentSectors) {
    warnings.push({
      code: 'VHD_SIZE_AMBIGUOUS',
      message: `VHD made by "${app}": sized by its CHS geometry (${chsSize} bytes) as qemu and Virtual PC do, but its footer's current size is ${footer.currentSize} bytes, which Hyper-V and Azure use`,
    });
  } else if (
    !useChs &&
    !CURRENT_SIZE_CREATORS.includes(footer.creatorApp) &&
    !CHS_CREATORS.includes(footer.creatorApp) &&
    chs !== MAX_CHS_SECTORS &&
    chs !== currentSectors
  ) {
    warnings.push({
      code: 'VHD_SIZE_AMBIGUOUS',
      message: `VHD made by unknown creator "${app}": sized by its footer's current size (${footer.currentSize} bytes) as Hyper-V, Azure and qemu 10 do; qemu-img before 10.0 uses its CHS geometry (${chsSize} bytes)`,
    });
  }
  if (sectors > MAX_SECTORS) {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot open ${name}: the VHD is ${sectors * SECTOR} bytes, more than the format's 2040 GiB`,
      { details: { virtualSize: sectors * SECTOR, max: MAX_SECTORS * SECTOR } },
    );
  }
  return { virtualSize: sectors * SECTOR, source: useChs ? 'chs' : 'current-size', chsSize };
}

/**
 * The CHS geometry the VHD specification (appendix) computes for a disk of
 * `totalSectors` sectors. It rounds down, and caps at 65535 x 16 x 255.
 */
export function specGeometry(totalSectors: number): Geometry {
  const ts = Math.min(totalSectors, MAX_CHS_SECTORS);
  let spt: number;
  let heads: number;
  let cth: number;
  if (ts >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(ts / spt);
  } else {
    spt = 17;
    cth = Math.floor(ts / spt);
    heads = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(ts / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(ts / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

export interface FooterSpec {
  readonly diskType: typeof DISK_FIXED | typeof DISK_DYNAMIC;
  readonly currentSize: number;
  /** Dynamic header offset (dynamic disks); fixed disks store all ones. */
  readonly dataOffset?: number;
  readonly creatorApp?: string;
  readonly creatorVersion?: number;
  readonly creatorHost?: string;
  readonly geometry?: Geometry;
  readonly uuid?: Buffer;
  readonly time?: Date;
}

/**
 * Encodes a footer. The defaults are ferry's: creator "qem2" (the creator
 * qemu's force_size option writes, which tells every qemu since 2.5 to use
 * current_size), host "Wi2k", the spec's geometry, a random UUID.
 */
export function encodeFooter(spec: FooterSpec): Buffer {
  const buf = Buffer.alloc(FOOTER_SIZE);
  buf.write(FOOTER_COOKIE, F.cookie, 'latin1');
  buf.writeUInt32BE(FEATURES_RESERVED, F.features);
  buf.writeUInt32BE(FORMAT_VERSION, F.version);
  if (spec.diskType === DISK_FIXED) buf.fill(0xff, F.dataOffset, F.dataOffset + 8);
  else buf.writeBigUInt64BE(BigInt(spec.dataOffset ?? 0), F.dataOffset);
  const seconds = Math.floor((spec.time ?? new Date()).getTime() / 1000) - VHD_EPOCH;
  buf.writeUInt32BE(Math.max(0, seconds) >>> 0, F.timestamp);
  buf.write((spec.creatorApp ?? 'qem2').padEnd(4, ' ').slice(0, 4), F.creatorApp, 'latin1');
  buf.writeUInt32BE(spec.creatorVersion ?? 0x00050003, F.creatorVersion);
  buf.write((spec.creatorHost ?? 'Wi2k').padEnd(4, ' ').slice(0, 4), F.creatorHost, 'latin1');
  buf.writeBigUInt64BE(BigInt(spec.currentSize), F.originalSize);
  buf.writeBigUInt64BE(BigInt(spec.currentSize), F.currentSize);
  const g = spec.geometry ?? specGeometry(Math.floor(spec.currentSize / SECTOR));
  buf.writeUInt16BE(g.cylinders, F.cylinders);
  buf.writeUInt8(g.heads, F.heads);
  buf.writeUInt8(g.sectorsPerTrack, F.sectorsPerTrack);
  buf.writeUInt32BE(spec.diskType, F.diskType);
  (spec.uuid ?? randomBytes(16)).copy(buf, F.uuid, 0, 16);
  sealChecksum(buf, F.checksum);
  return buf;
}
