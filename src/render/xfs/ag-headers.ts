import { setCrc } from './checksum.js';
import {
  BNO_ROOT,
  CNT_ROOT,
  FINO_ROOT,
  INO_ROOT,
  MAGIC,
  NULL_AGINO,
  SECTOR_SIZE,
} from './constants.js';

export interface AgfFields {
  readonly agno: number;
  readonly length: number;
  readonly uuid: Buffer;
  readonly bnoLevel: number;
  readonly cntLevel: number;
  readonly freeBlocks: number;
  readonly longest: number;
  /** Blocks of the free space btrees beyond their roots. */
  readonly btreeBlocks: number;
}

/** The AG free space header (sector 1). The free list starts empty: the kernel fills it on first use. */
export function encodeAgf(f: AgfFields): Buffer {
  const b = Buffer.alloc(SECTOR_SIZE);
  b.writeUInt32BE(MAGIC.agf, 0);
  b.writeUInt32BE(1, 4);
  b.writeUInt32BE(f.agno, 8);
  b.writeUInt32BE(f.length, 12);
  b.writeUInt32BE(BNO_ROOT, 16);
  b.writeUInt32BE(CNT_ROOT, 20);
  b.writeUInt32BE(f.bnoLevel, 28);
  b.writeUInt32BE(f.cntLevel, 32);
  b.writeUInt32BE(0, 40); // flfirst
  b.writeUInt32BE(AGFL_SLOTS - 1, 44); // fllast
  b.writeUInt32BE(0, 48); // flcount
  b.writeUInt32BE(f.freeBlocks, 52);
  b.writeUInt32BE(f.longest, 56);
  b.writeUInt32BE(f.btreeBlocks, 60);
  f.uuid.copy(b, 64);
  setCrc(b, 216);
  return b;
}

export interface AgiFields {
  readonly agno: number;
  readonly length: number;
  readonly uuid: Buffer;
  readonly count: number;
  readonly free: number;
  readonly inoLevel: number;
  readonly finoLevel: number;
  /** AG inode number of the newest chunk, or none. */
  readonly newino: number;
}

/** The AG inode header (sector 2). */
export function encodeAgi(f: AgiFields): Buffer {
  const b = Buffer.alloc(SECTOR_SIZE);
  b.writeUInt32BE(MAGIC.agi, 0);
  b.writeUInt32BE(1, 4);
  b.writeUInt32BE(f.agno, 8);
  b.writeUInt32BE(f.length, 12);
  b.writeUInt32BE(f.count, 16);
  b.writeUInt32BE(INO_ROOT, 20);
  b.writeUInt32BE(f.inoLevel, 24);
  b.writeUInt32BE(f.free, 28);
  b.writeUInt32BE(f.newino, 32);
  b.writeUInt32BE(NULL_AGINO, 36); // dirino
  for (let i = 0; i < 64; i++) b.writeUInt32BE(NULL_AGINO, 40 + i * 4); // unlinked buckets
  f.uuid.copy(b, 296);
  b.writeUInt32BE(FINO_ROOT, 328);
  b.writeUInt32BE(f.finoLevel, 332);
  setCrc(b, 312);
  return b;
}

/** Slots of the AG free list in its sector (after the 36-byte v5 header). */
export const AGFL_SLOTS = (SECTOR_SIZE - 36) / 4;

/** The AG free list (sector 3): empty. */
export function encodeAgfl(agno: number, uuid: Buffer): Buffer {
  const b = Buffer.alloc(SECTOR_SIZE, 0xff);
  b.fill(0, 0, 36);
  b.writeUInt32BE(MAGIC.agfl, 0);
  b.writeUInt32BE(agno, 4);
  uuid.copy(b, 8);
  setCrc(b, 32);
  return b;
}
