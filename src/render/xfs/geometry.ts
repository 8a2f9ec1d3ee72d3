import { INOPB_LOG, LOG_BLOCKS, PREALLOC_BLOCKS } from './constants.js';

/**
 * Where things are in an XFS filesystem of `agcount` allocation groups of
 * `agblocks` blocks (the last one may be shorter). Blocks are numbered two
 * ways: linearly on the device (what the image writer takes), and as XFS
 * "fsblocks", the AG number shifted above agblklog bits of AG block.
 */
export class XfsGeometry {
  readonly agblklog: number;
  /** The AG holding the internal log (the middle one, as mkfs.xfs places it) and its first block. */
  readonly logAg: number;
  readonly logAgbno = PREALLOC_BLOCKS;

  constructor(
    readonly agcount: number,
    readonly agblocks: number,
    readonly dblocks: number,
    readonly logBlocks: number = LOG_BLOCKS,
  ) {
    this.agblklog = Math.ceil(Math.log2(agblocks));
    this.logAg = agcount > 1 ? Math.floor(agcount / 2) : 0;
  }

  agLength(ag: number): number {
    return ag < this.agcount - 1 ? this.agblocks : this.dblocks - this.agblocks * ag;
  }

  agStart(ag: number): number {
    return ag * this.agblocks;
  }

  agOf(linear: number): number {
    return Math.floor(linear / this.agblocks);
  }

  /** The fsblock number of a linear block. */
  fsb(linear: number): number {
    const ag = this.agOf(linear);
    return ag * 2 ** this.agblklog + (linear - ag * this.agblocks);
  }

  /** The 512-byte disk address of a linear block (the blkno in v5 headers). */
  daddr(linear: number): bigint {
    return BigInt(linear) * 8n;
  }

  /** The inode number of inode `index` in linear block `linear`. */
  ino(linear: number, index: number): number {
    const ag = this.agOf(linear);
    const agbno = linear - ag * this.agblocks;
    return (ag * 2 ** this.agblklog + agbno) * 2 ** INOPB_LOG + index;
  }

  /** The AG-relative inode number of an inode. */
  agino(ino: number): number {
    return ino % 2 ** (this.agblklog + INOPB_LOG);
  }

  get logStartLinear(): number {
    return this.agStart(this.logAg) + this.logAgbno;
  }
}
