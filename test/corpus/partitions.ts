import type { ErrorCode } from '../../src/errors/index.js';
import type { PartitionFindingCode } from '../../src/inspect/partitions/index.js';
import { crc32 } from '../../src/util/crc32.js';

/**
 * Partition tables built in code: valid MBR/EBR chains and GPTs (512-byte or
 * 4096-byte sectors) that tests patch into hostile ones. sfdisk reads what
 * these builders write (partitions.test.ts checks that), so they are valid.
 */

export const LINUX_FS = '0fc63daf-8483-4772-8e79-3d69d8477de4';
export const EFI_SYSTEM = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';
export const BIOS_BOOT = '21686148-6449-6e6f-744e-656564454649';

/** GUID text to its 16 on-disk bytes (first three fields little-endian). */
export function guidBytes(guid: string): Buffer {
  const h = guid.replaceAll('-', '');
  const b = Buffer.from(h, 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

export interface MbrEntrySpec {
  readonly slot: number;
  readonly type: number;
  readonly start: number;
  readonly sectors: number;
  readonly boot?: number;
}

/** Writes one 16-byte entry at slot 0-3 of the MBR/EBR at `sector` (byte offset). */
export function writeMbrEntry(buf: Buffer, sectorOffset: number, e: MbrEntrySpec): void {
  const o = sectorOffset + 446 + e.slot * 16;
  buf[o] = e.boot ?? 0;
  buf[o + 4] = e.type;
  buf.writeUInt32LE(e.start >>> 0, o + 8);
  buf.writeUInt32LE(e.sectors >>> 0, o + 12);
  buf[sectorOffset + 510] = 0x55;
  buf[sectorOffset + 511] = 0xaa;
}

/**
 * An MBR disk of `sectors` 512-byte sectors with the given primaries and,
 * when `logicals` is given, an extended partition in slot `extSlot` holding
 * them (each logical gets an EBR one sector before it).
 */
export function buildMbr(spec: {
  sectors: number;
  primaries: readonly MbrEntrySpec[];
  extended?: {
    slot: number;
    start: number;
    sectors: number;
    logicals: readonly { start: number; sectors: number; type: number }[];
  };
  signature?: number;
}): Buffer {
  const buf = Buffer.alloc(spec.sectors * 512);
  buf.writeUInt32LE(spec.signature ?? 0x1234abcd, 440);
  buf[510] = 0x55;
  buf[511] = 0xaa;
  for (const e of spec.primaries) writeMbrEntry(buf, 0, e);
  const ext = spec.extended;
  if (ext !== undefined) {
    writeMbrEntry(buf, 0, { slot: ext.slot, type: 0x05, start: ext.start, sectors: ext.sectors });
    ext.logicals.forEach((l, i) => {
      const ebr = l.start - 1;
      writeMbrEntry(buf, ebr * 512, { slot: 0, type: l.type, start: 1, sectors: l.sectors });
      const next = ext.logicals[i + 1];
      if (next !== undefined) {
        writeMbrEntry(buf, ebr * 512, {
          slot: 1,
          type: 0x05,
          start: next.start - 1 - ext.start,
          sectors: next.sectors + 1,
        });
      }
    });
  }
  return buf;
}

export interface GptPartSpec {
  readonly first: number;
  readonly last: number;
  readonly type: string;
  readonly uuid?: string;
  readonly name?: string;
  readonly attrs?: bigint;
  /** Entry slot (0-based); defaults to the position in the list. */
  readonly slot?: number;
}

export interface GptSpec {
  readonly sectorSize?: number;
  readonly sectors: number;
  readonly parts: readonly GptPartSpec[];
  readonly entries?: number;
  readonly entrySize?: number;
  readonly backup?: boolean;
  readonly diskGuid?: string;
}

export interface GptLayout {
  readonly ss: number;
  readonly arraySectors: number;
  readonly lastLba: number;
  readonly primaryArrayLba: number;
  readonly backupArrayLba: number;
}

export function gptLayout(buf: Buffer, ss: number): GptLayout {
  const count = buf.readUInt32LE(ss + 80);
  const size = buf.readUInt32LE(ss + 84);
  const arraySectors = Math.ceil((count * size) / ss);
  const lastLba = buf.length / ss - 1;
  return { ss, arraySectors, lastLba, primaryArrayLba: 2, backupArrayLba: lastLba - arraySectors };
}

function writeHeader(
  buf: Buffer,
  ss: number,
  lba: number,
  alternate: number,
  arrayLba: number,
  f: { first: number; last: number; guid: Buffer; count: number; size: number; arrayCrc: number },
): void {
  const o = lba * ss;
  buf.fill(0, o, o + ss);
  buf.write('EFI PART', o, 'latin1');
  buf.writeUInt32LE(0x00010000, o + 8);
  buf.writeUInt32LE(92, o + 12);
  buf.writeBigUInt64LE(BigInt(lba), o + 24);
  buf.writeBigUInt64LE(BigInt(alternate), o + 32);
  buf.writeBigUInt64LE(BigInt(f.first), o + 40);
  buf.writeBigUInt64LE(BigInt(f.last), o + 48);
  f.guid.copy(buf, o + 56);
  buf.writeBigUInt64LE(BigInt(arrayLba), o + 72);
  buf.writeUInt32LE(f.count, o + 80);
  buf.writeUInt32LE(f.size, o + 84);
  buf.writeUInt32LE(f.arrayCrc, o + 88);
  buf.writeUInt32LE(crc32(buf.subarray(o, o + 92)), o + 16);
}

/** A GPT disk with a protective MBR, primary and (unless `backup: false`) backup copies. */
export function buildGpt(spec: GptSpec): Buffer {
  const ss = spec.sectorSize ?? 512;
  const count = spec.entries ?? 128;
  const size = spec.entrySize ?? 128;
  const buf = Buffer.alloc(spec.sectors * ss);
  const lastLba = spec.sectors - 1;
  writeMbrEntry(buf, 0, { slot: 0, type: 0xee, start: 1, sectors: Math.min(lastLba, 0xffffffff) });
  const array = Buffer.alloc(count * size);
  spec.parts.forEach((p, i) => {
    const o = (p.slot ?? i) * size;
    guidBytes(p.type).copy(array, o);
    guidBytes(p.uuid ?? `00000000-0000-4000-8000-${(i + 1).toString(16).padStart(12, '0')}`).copy(
      array,
      o + 16,
    );
    array.writeBigUInt64LE(BigInt(p.first), o + 32);
    array.writeBigUInt64LE(BigInt(p.last), o + 40);
    array.writeBigUInt64LE(p.attrs ?? 0n, o + 48);
    if (p.name !== undefined) array.write(p.name, o + 56, 72, 'utf16le');
  });
  const arraySectors = Math.ceil((count * size) / ss);
  const f = {
    first: 2 + arraySectors,
    last: lastLba - arraySectors - 1,
    guid: guidBytes(spec.diskGuid ?? '01234567-89ab-cdef-0123-456789abcdef'),
    count,
    size,
    arrayCrc: crc32(array),
  };
  array.copy(buf, 2 * ss);
  writeHeader(buf, ss, 1, lastLba, 2, f);
  if (spec.backup !== false) {
    array.copy(buf, (lastLba - arraySectors) * ss);
    writeHeader(buf, ss, lastLba, 1, lastLba - arraySectors, f);
  }
  return buf;
}

/** Recomputes the CRCs of the GPT header at `lba` (and of its entry array when it lies inside `buf`). */
export function fixGptCrc(buf: Buffer, ss: number, lba: number): void {
  const o = lba * ss;
  if (o + ss > buf.length || buf.toString('latin1', o, o + 8) !== 'EFI PART') return;
  const arrayLba = Number(buf.readBigUInt64LE(o + 72) & 0xffffffffn);
  const bytes = buf.readUInt32LE(o + 80) * buf.readUInt32LE(o + 84);
  if (bytes <= 4 * 1024 * 1024 && arrayLba * ss + bytes <= buf.length) {
    buf.writeUInt32LE(crc32(buf.subarray(arrayLba * ss, arrayLba * ss + bytes)), o + 88);
  }
  const hs = buf.readUInt32LE(o + 12);
  if (hs < 92 || hs > ss) return;
  buf.writeUInt32LE(0, o + 16);
  buf.writeUInt32LE(crc32(buf.subarray(o, o + hs)), o + 16);
}

/**
 * A small valid GPT: BIOS boot, EFI system, Linux root (legacy BIOS bootable).
 * 512-byte sectors: 1 MiB, partitions at LBA 64, 128, 1024; 4096-byte: 2 MiB.
 */
export function smallGpt(sectorSize = 512, backup = true): Buffer {
  const lbas = sectorSize === 512 ? [64, 127, 128, 1023, 1024, 1983] : [8, 15, 16, 127, 128, 247];
  const [a, b, c, d, e, f] = lbas as [number, number, number, number, number, number];
  return buildGpt({
    sectorSize,
    sectors: sectorSize === 512 ? 2048 : 512,
    backup,
    parts: [
      { first: a, last: b, type: BIOS_BOOT, name: 'bios' },
      { first: c, last: d, type: EFI_SYSTEM, name: 'EFI System' },
      { first: e, last: f, type: LINUX_FS, name: 'root', attrs: 4n },
    ],
  });
}

/** One hostile (or odd) partition table and what readPartitionTable must say about it. */
export interface MalformedPartitionCase {
  readonly name: string;
  readonly build: () => Buffer;
  readonly expect: { readonly error: ErrorCode } | { readonly finding: PartitionFindingCode };
}

function patchGpt(
  fn: (buf: Buffer, l: GptLayout) => void,
  opts: { ss?: number; fix?: 'primary' | 'both' | 'none'; backup?: boolean } = {},
): () => Buffer {
  return () => {
    const ss = opts.ss ?? 512;
    const buf = smallGpt(ss, opts.backup ?? true);
    const l = gptLayout(buf, ss);
    fn(buf, l);
    if (opts.fix !== 'none') {
      fixGptCrc(buf, ss, 1);
      if (opts.fix === 'both') fixGptCrc(buf, ss, l.lastLba);
    }
    return buf;
  };
}

/** An extended partition at sector 100 whose EBRs are given as [data start rel, data size, next EBR rel]. */
function ebrChain(
  links: readonly (readonly [number, number, number | null])[],
  sectors = 4096,
): Buffer {
  const buf = buildMbr({ sectors, primaries: [{ slot: 0, type: 0x83, start: 2, sectors: 90 }] });
  writeMbrEntry(buf, 0, { slot: 1, type: 0x05, start: 100, sectors: sectors - 100 });
  let ebr = 100;
  for (const [dataRel, dataSize, next] of links) {
    if (dataSize > 0)
      writeMbrEntry(buf, ebr * 512, { slot: 0, type: 0x83, start: dataRel, sectors: dataSize });
    else {
      buf[ebr * 512 + 510] = 0x55;
      buf[ebr * 512 + 511] = 0xaa;
    }
    if (next !== null)
      writeMbrEntry(buf, ebr * 512, { slot: 1, type: 0x05, start: next, sectors: 2 });
    ebr = 100 + (next ?? 0);
  }
  return buf;
}

export const partitionCases: readonly MalformedPartitionCase[] = [
  {
    name: 'EBR that links to itself',
    build: () => ebrChain([[1, 1, 0]]),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'two EBRs that link to each other',
    build: () =>
      ebrChain([
        [1, 1, 10],
        [1, 1, 0],
      ]),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'more than 128 logical partitions',
    build: () => ebrChain(Array.from({ length: 140 }, (_, i) => [1, 1, (i + 1) * 2] as const)),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'a chain of 300 EBRs holding no partition',
    build: () =>
      ebrChain(
        Array.from({ length: 300 }, (_, i) => [1, 0, (i + 1) * 2] as const),
        4096,
      ),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'EBR chain pointing outside the disk',
    build: () => ebrChain([[1, 1, 0x7fffff00]]),
    expect: { finding: 'MBR_EBR_OUTSIDE' },
  },
  {
    name: 'EBR without its 0x55AA signature',
    build: () => {
      const buf = ebrChain([
        [1, 1, 10],
        [1, 1, null],
      ]);
      buf[110 * 512 + 510] = 0;
      return buf;
    },
    expect: { finding: 'MBR_EBR_BAD_SIGNATURE' },
  },
  {
    name: 'logical partition extending beyond its extended partition',
    build: () => {
      const buf = ebrChain([[1, 10, null]]);
      writeMbrEntry(buf, 0, { slot: 1, type: 0x05, start: 100, sectors: 5 });
      return buf;
    },
    expect: { finding: 'MBR_LOGICAL_OUTSIDE_EXTENDED' },
  },
  {
    name: 'MBR boot indicator 0x7f',
    build: () =>
      buildMbr({
        sectors: 64,
        primaries: [{ slot: 0, type: 0x83, start: 2, sectors: 10, boot: 0x7f }],
      }),
    expect: { finding: 'MBR_BAD_BOOT_FLAG' },
  },
  {
    name: 'MBR partition beyond the disk',
    build: () =>
      buildMbr({
        sectors: 64,
        primaries: [{ slot: 0, type: 0x83, start: 2, sectors: 0xfffffff0 }],
      }),
    expect: { finding: 'PARTITION_OUTSIDE_DISK' },
  },
  {
    name: 'MBR overlapping partitions',
    build: () =>
      buildMbr({
        sectors: 64,
        primaries: [
          { slot: 0, type: 0x83, start: 2, sectors: 20 },
          { slot: 1, type: 0x83, start: 10, sectors: 20 },
        ],
      }),
    expect: { finding: 'PARTITIONS_OVERLAP' },
  },
  {
    name: 'two active MBR partitions',
    build: () =>
      buildMbr({
        sectors: 64,
        primaries: [
          { slot: 0, type: 0x83, start: 2, sectors: 20, boot: 0x80 },
          { slot: 1, type: 0x83, start: 30, sectors: 20, boot: 0x80 },
        ],
      }),
    expect: { finding: 'MBR_MULTIPLE_ACTIVE' },
  },
  {
    name: 'protective MBR without any GPT header',
    build: () =>
      buildMbr({ sectors: 64, primaries: [{ slot: 0, type: 0xee, start: 1, sectors: 63 }] }),
    expect: { finding: 'GPT_HEADER_MISSING' },
  },
  {
    name: 'GPT header CRC wrong and no backup',
    build: patchGpt((b) => b.writeUInt32LE(0xdeadbeef, 512 + 16), { fix: 'none', backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT primary header CRC wrong, backup valid',
    build: patchGpt((b) => b.writeUInt32LE(0xdeadbeef, 512 + 16), { fix: 'none' }),
    expect: { finding: 'GPT_PRIMARY_CORRUPT' },
  },
  {
    name: 'GPT entry array CRC wrong in both copies',
    build: patchGpt(
      (b, l) => {
        b.writeUInt8(b.readUInt8(l.primaryArrayLba * 512 + 56) ^ 1, l.primaryArrayLba * 512 + 56);
        b.writeUInt8(b.readUInt8(l.backupArrayLba * 512 + 56) ^ 1, l.backupArrayLba * 512 + 56);
      },
      { fix: 'none' },
    ),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT entry count 0xFFFFFFFF (CRCs fixed)',
    build: patchGpt(
      (b, l) => {
        b.writeUInt32LE(0xffffffff, 512 + 80);
        b.writeUInt32LE(0xffffffff, l.lastLba * 512 + 80);
      },
      { fix: 'both' },
    ),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT entry count 1025',
    build: patchGpt((b) => b.writeUInt32LE(1025, 512 + 80), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT entry size 0',
    build: patchGpt((b) => b.writeUInt32LE(0, 512 + 84), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT entry size 130 (not a multiple of 8)',
    build: patchGpt((b) => b.writeUInt32LE(130, 512 + 84), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT header size 0',
    build: patchGpt((b) => b.writeUInt32LE(0, 512 + 12), { fix: 'none', backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT entry array beyond the disk',
    build: patchGpt((b) => b.writeBigUInt64LE(1n << 40n, 512 + 72), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT entry array covering its own header',
    build: patchGpt((b) => b.writeBigUInt64LE(1n, 512 + 72), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT LBA fields at 2^64-1',
    build: patchGpt(
      (b) => {
        b.writeBigUInt64LE(0xffffffffffffffffn, 512 + 40);
        b.writeBigUInt64LE(0xffffffffffffffffn, 512 + 48);
      },
      { backup: false },
    ),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT first usable LBA after the last',
    build: patchGpt((b) => b.writeBigUInt64LE(2030n, 512 + 40), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT header claiming another LBA',
    build: patchGpt((b) => b.writeBigUInt64LE(7n, 512 + 24), { backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT (4096-byte sectors) header CRC wrong and no backup',
    build: patchGpt((b) => b.writeUInt32LE(1, 4096 + 16), { ss: 4096, fix: 'none', backup: false }),
    expect: { error: 'FERRY_PARTITION_TABLE' },
  },
  {
    name: 'GPT partition beyond the disk',
    build: patchGpt(
      (b, l) => {
        b.writeBigUInt64LE(1n << 40n, l.primaryArrayLba * 512 + 2 * 128 + 40);
        b.writeBigUInt64LE(1n << 40n, l.backupArrayLba * 512 + 2 * 128 + 40);
      },
      { fix: 'both' },
    ),
    expect: { finding: 'PARTITION_OUTSIDE_DISK' },
  },
  {
    name: 'GPT partition ending before it starts',
    build: patchGpt((b, l) => b.writeBigUInt64LE(10n, l.primaryArrayLba * 512 + 2 * 128 + 40), {
      backup: false,
    }),
    expect: { finding: 'GPT_ENTRY_INVALID' },
  },
  {
    name: 'GPT partition at an LBA past 2^53 bytes',
    build: patchGpt(
      (b, l) => {
        b.writeBigUInt64LE(1n << 60n, l.primaryArrayLba * 512 + 2 * 128 + 32);
        b.writeBigUInt64LE((1n << 60n) + 5n, l.primaryArrayLba * 512 + 2 * 128 + 40);
      },
      { backup: false },
    ),
    expect: { finding: 'GPT_ENTRY_INVALID' },
  },
  {
    name: 'GPT overlapping partitions',
    build: patchGpt((b, l) => b.writeBigUInt64LE(500n, l.primaryArrayLba * 512 + 2 * 128 + 32), {
      backup: false,
    }),
    expect: { finding: 'PARTITIONS_OVERLAP' },
  },
  {
    name: 'GPT partition in the entry array area',
    build: patchGpt((b, l) => b.writeBigUInt64LE(3n, l.primaryArrayLba * 512 + 32), {
      backup: false,
    }),
    expect: { finding: 'GPT_PARTITION_OUTSIDE_USABLE' },
  },
  {
    name: 'GPT backup header missing',
    build: () => smallGpt(512, false),
    expect: { finding: 'GPT_BACKUP_MISSING' },
  },
  {
    name: 'GPT backup header corrupt',
    build: patchGpt((b, l) => b.writeUInt32LE(5, l.lastLba * 512 + 16), { fix: 'primary' }),
    expect: { finding: 'GPT_BACKUP_CORRUPT' },
  },
  {
    name: 'GPT backup disagreeing with the primary',
    build: patchGpt((b, l) => b.writeUInt32LE(0x11111111, l.lastLba * 512 + 60), { fix: 'both' }),
    expect: { finding: 'GPT_BACKUP_MISMATCH' },
  },
  {
    name: 'GPT disk grown without moving the backup',
    build: () => Buffer.concat([smallGpt(512), Buffer.alloc(1024 * 1024)]),
    expect: { finding: 'GPT_BACKUP_MISMATCH' },
  },
  {
    name: 'GPT disk truncated (backup location beyond the end)',
    build: () => smallGpt(512).subarray(0, 1500 * 512),
    expect: { finding: 'GPT_BACKUP_MISMATCH' },
  },
  {
    name: 'GPT protective MBR not covering the disk',
    build: () => {
      const b = smallGpt(512);
      b.writeUInt32LE(1000, 446 + 12);
      return b;
    },
    expect: { finding: 'GPT_PMBR_SIZE_MISMATCH' },
  },
  {
    name: 'GPT without a protective MBR',
    build: () => {
      const b = smallGpt(512);
      b.fill(0, 0, 512);
      return b;
    },
    expect: { finding: 'GPT_NO_PROTECTIVE_MBR' },
  },
];
