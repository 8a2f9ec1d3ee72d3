import { setCrc } from './checksum.js';
import {
  BLOCK_LOG,
  BLOCK_SIZE,
  INODE_ALIGN,
  INODE_LOG,
  INODE_SIZE,
  INODES_PER_BLOCK,
  INOPB_LOG,
  MAGIC,
  SECTOR_LOG,
  SECTOR_SIZE,
} from './constants.js';
import type { XfsGeometry } from './geometry.js';

export interface SuperFields {
  readonly geo: XfsGeometry;
  readonly uuid: Buffer;
  readonly label: string;
  readonly rootIno: number;
  readonly icount: number;
  readonly ifree: number;
  readonly fdblocks: number;
}

/** v5 with the bits every v5 has: NLINK, ALIGN, LOGV2, EXTFLG, DIRV2, MOREBITS. */
const VERSION = 0x5 | 0x20 | 0x80 | 0x400 | 0x1000 | 0x2000 | 0x8000;
/** LAZYSBCOUNT, ATTR2, PROJID32, CRC. */
const FEATURES2 = 0x2 | 0x8 | 0x80 | 0x100;
const RO_COMPAT_FINOBT = 0x1;
/** FTYPE (file types in directory entries), BIGTIME (timestamps to 2486). */
const INCOMPAT = 0x1 | 0x8;

/** The superblock sector (the same in every AG). */
export function encodeSuperblock(f: SuperFields): Buffer {
  const g = f.geo;
  const b = Buffer.alloc(SECTOR_SIZE);
  b.writeUInt32BE(MAGIC.sb, 0);
  b.writeUInt32BE(BLOCK_SIZE, 4);
  b.writeBigUInt64BE(BigInt(g.dblocks), 8);
  f.uuid.copy(b, 32);
  b.writeBigUInt64BE(BigInt(g.fsb(g.logStartLinear)), 48);
  b.writeBigUInt64BE(BigInt(f.rootIno), 56);
  b.writeBigUInt64BE(BigInt(f.rootIno + 1), 64); // the realtime bitmap inode
  b.writeBigUInt64BE(BigInt(f.rootIno + 2), 72); // the realtime summary inode
  b.writeUInt32BE(1, 80); // rextsize
  b.writeUInt32BE(g.agblocks, 84);
  b.writeUInt32BE(g.agcount, 88);
  b.writeUInt32BE(g.logBlocks, 96);
  b.writeUInt16BE(VERSION, 100);
  b.writeUInt16BE(SECTOR_SIZE, 102);
  b.writeUInt16BE(INODE_SIZE, 104);
  b.writeUInt16BE(INODES_PER_BLOCK, 106);
  Buffer.from(f.label, 'utf8').subarray(0, 12).copy(b, 108);
  b[120] = BLOCK_LOG;
  b[121] = SECTOR_LOG;
  b[122] = INODE_LOG;
  b[123] = INOPB_LOG;
  b[124] = g.agblklog;
  b[127] = 25; // imax_pct
  b.writeBigUInt64BE(BigInt(f.icount), 128);
  b.writeBigUInt64BE(BigInt(f.ifree), 136);
  b.writeBigUInt64BE(BigInt(f.fdblocks), 144);
  // No quota inodes (0, as mkfs.xfs leaves them).
  b.writeUInt32BE(INODE_ALIGN, 180);
  b.writeUInt32BE(1, 196); // logsunit
  b.writeUInt32BE(FEATURES2, 200);
  b.writeUInt32BE(FEATURES2, 204);
  b.writeUInt32BE(RO_COMPAT_FINOBT, 212);
  b.writeUInt32BE(INCOMPAT, 216);
  setCrc(b, 224);
  return b;
}
