import { FerryError } from '../../../errors/index.js';
import { LIMITS } from '../../limits.js';

export type ExtentAccess = 'RW' | 'RDONLY' | 'NOACCESS';

/** One extent line: `RW 20971520 SPARSE "disk.vmdk"` or `RW 2048 FLAT "disk-flat.vmdk" 0`. */
export interface ExtentLine {
  readonly access: ExtentAccess;
  readonly sectors: number;
  readonly type: string;
  readonly file: string | null;
  readonly offset: number | null;
}

/** A parsed VMDK text descriptor. */
export interface Descriptor {
  readonly version: number;
  readonly cid: string;
  readonly parentCid: string;
  readonly createType: string;
  readonly extents: readonly ExtentLine[];
  /** `ddb.*` entries, keys without the prefix (e.g. `adapterType`). */
  readonly ddb: Readonly<Record<string, string>>;
}

export const DESCRIPTOR_SIGNATURE = '# Disk DescriptorFile';
const NO_PARENT = 'ffffffff';

function bad(name: string, reason: string, details?: Record<string, string | number>) {
  return new FerryError(
    'FERRY_VMDK_BAD_DESCRIPTOR',
    `Cannot open vmdk image ${name}: the descriptor ${reason}`,
    details === undefined ? {} : { details },
  );
}

const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?$/;
const KEY_VALUE = /^([A-Za-z][A-Za-z0-9_.]*)\s*=\s*(.*)$/;
// Printable ASCII, tab, CR and LF only.
const NON_ASCII = /[^\t\n\r\x20-\x7e]/;

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

function toInt(s: string, what: string, name: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw bad(name, `has an out-of-range ${what}`, { value: s });
  return n;
}

/**
 * Parses descriptor text (an embedded descriptor is cut at its first NUL).
 * Refuses anything but ASCII, unknown line shapes, duplicate keys, a missing
 * version/CID/createType, and parents (differencing disks).
 */
export function parseDescriptor(raw: Buffer, name: string): Descriptor {
  if (raw.length > LIMITS.maxVmdkDescriptorBytes) {
    throw bad(name, 'is over 1 MiB', { size: raw.length });
  }
  const nul = raw.indexOf(0);
  const text = raw.toString('latin1', 0, nul < 0 ? raw.length : nul);
  if (NON_ASCII.test(text)) throw bad(name, 'contains bytes that are not ASCII text');
  const keys = new Map<string, string>();
  const ddb: Record<string, string> = {};
  const extents: ExtentLine[] = [];
  let lineNo = 0;
  for (const rawLine of text.split('\n')) {
    lineNo++;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const ext = EXTENT_LINE.exec(line);
    if (ext !== null) {
      const sectors = toInt(ext[2]!, 'extent size', name);
      extents.push({
        access: ext[1] as ExtentAccess,
        sectors,
        type: ext[3]!.toUpperCase(),
        file: ext[4] ?? null,
        offset: ext[5] === undefined ? null : toInt(ext[5], 'extent offset', name),
      });
      continue;
    }
    const kv = KEY_VALUE.exec(line);
    if (kv === null) throw bad(name, `has an unrecognised line ${lineNo}`, { line: lineNo });
    const key = kv[1]!;
    const value = unquote(kv[2]!.trim());
    if (keys.has(key)) throw bad(name, `repeats the key ${key}`, { key });
    keys.set(key, value);
    if (key.startsWith('ddb.')) ddb[key.slice(4)] = value;
  }
  const version = keys.get('version');
  if (version === undefined || !/^[123]$/.test(version)) {
    throw bad(name, 'has no version 1, 2 or 3');
  }
  const cid = keys.get('CID');
  if (cid === undefined || !/^[0-9a-fA-F]{1,8}$/.test(cid)) throw bad(name, 'has no valid CID');
  const parentCid = (keys.get('parentCID') ?? NO_PARENT).toLowerCase();
  if (parentCid !== NO_PARENT || keys.has('parentFileNameHint')) {
    throw new FerryError(
      'FERRY_VMDK_DIFFERENCING',
      `Cannot open vmdk image ${name}: it is a differencing disk (parentCID ${parentCid}); ferry never opens its parent`,
      { details: { parentCid } },
    );
  }
  const createType = keys.get('createType');
  if (createType === undefined || createType === '') throw bad(name, 'has no createType');
  return { version: Number(version), cid: cid.toLowerCase(), parentCid, createType, extents, ddb };
}

/**
 * Refuses an extent file name that is not a plain name in the descriptor's
 * own directory: absolute paths, separators, "." and ".." (CVE-2022-47951).
 */
export function checkExtentFileName(file: string | null, name: string): string {
  if (
    file === null ||
    file === '' ||
    file === '.' ||
    file === '..' ||
    file.includes('/') ||
    file.includes('\\') ||
    /^[A-Za-z]:/.test(file)
  ) {
    throw new FerryError(
      'FERRY_VMDK_EXTENT_PATH',
      `Cannot open vmdk image ${name}: the extent "${file ?? ''}" is not a plain file name in the descriptor's directory`,
      { details: { extent: file ?? '' } },
    );
  }
  return file;
}

export interface StreamDescriptorFields {
  readonly cid: number;
  readonly capacity: number;
  readonly extentName: string;
  readonly adapterType: string;
  readonly hwVersion: string;
}

/**
 * The embedded descriptor of a stream-optimized disk, laid out as qemu-img
 * writes it. Geometry follows qemu: 63 sectors per track, 16 heads for IDE
 * and 255 otherwise, cylinders = capacity / (heads x 63), capped at 65535 as
 * VMware's open-vmdk does.
 */
export function buildStreamDescriptor(f: StreamDescriptorFields): string {
  const heads = f.adapterType === 'ide' ? 16 : 255;
  const cylinders = Math.min(65535, Math.floor(f.capacity / (heads * 63)));
  return [
    DESCRIPTOR_SIGNATURE,
    'version=1',
    `CID=${f.cid.toString(16).padStart(8, '0')}`,
    `parentCID=${NO_PARENT}`,
    'createType="streamOptimized"',
    '',
    '# Extent description',
    `RW ${f.capacity} SPARSE "${f.extentName.replace(/["\n\r]/g, '_')}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    `ddb.virtualHWVersion = "${f.hwVersion}"`,
    `ddb.geometry.cylinders = "${cylinders}"`,
    `ddb.geometry.heads = "${heads}"`,
    'ddb.geometry.sectors = "63"',
    `ddb.adapterType = "${f.adapterType}"`,
    'ddb.toolsVersion = "2147483647"',
    '',
  ].join('\n');
}
