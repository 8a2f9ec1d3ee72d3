import { type FsProbe, formatUuid, isZero, type ProbeSource, safeProduct } from './probe-util.js';

const SB = 1024;
const MAGIC = 0xef53;

const COMPAT_HAS_JOURNAL = 0x4;
const INCOMPAT_JOURNAL_DEV = 0x8;
const INCOMPAT_64BIT = 0x80;
/** Features ext2 and ext3 drivers understand (as blkid decides ext2/ext3/ext4). */
const RO_COMPAT_EXT23 = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir
const INCOMPAT_EXT2 = 0x2 | 0x10; // filetype, meta_bg
const INCOMPAT_EXT3 = 0x2 | 0x4 | 0x10; // filetype, needs_recovery, meta_bg

const COMPAT_NAMES: Record<number, string> = {
  1: 'dir_prealloc',
  2: 'imagic_inodes',
  4: 'has_journal',
  8: 'ext_attr',
  16: 'resize_inode',
  32: 'dir_index',
  64: 'lazy_bg',
  512: 'sparse_super2',
  1024: 'fast_commit',
  2048: 'stable_inodes',
  4096: 'orphan_file',
};
const RO_COMPAT_NAMES: Record<number, string> = {
  1: 'sparse_super',
  2: 'large_file',
  4: 'btree_dir',
  8: 'huge_file',
  16: 'uninit_bg',
  32: 'dir_nlink',
  64: 'extra_isize',
  128: 'snapshot',
  256: 'quota',
  512: 'bigalloc',
  1024: 'metadata_csum',
  2048: 'replica',
  4096: 'read-only',
  8192: 'project',
  16384: 'shared_blocks',
  32768: 'verity',
  65536: 'orphan_present',
};
const INCOMPAT_NAMES: Record<number, string> = {
  1: 'compression',
  2: 'filetype',
  4: 'needs_recovery',
  8: 'journal_dev',
  16: 'meta_bg',
  64: 'extent',
  128: '64bit',
  256: 'mmp',
  512: 'flex_bg',
  1024: 'ea_inode',
  4096: 'dirdata',
  8192: 'metadata_csum_seed',
  16384: 'large_dir',
  32768: 'inline_data',
  65536: 'encrypt',
  131072: 'casefold',
};

function names(flags: number, table: Record<number, string>): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const f = 2 ** bit;
    if ((flags & f) === 0) continue;
    out.push(table[f] ?? `unknown_0x${f.toString(16)}`);
  }
  return out;
}

/**
 * ext2/3/4: the superblock at 1024 with magic 0xEF53. The type follows
 * blkid: ext3 has a journal and only ext3 features, ext2 has no journal and
 * only ext2 features, anything beyond is ext4. An external journal device
 * (journal_dev) is not a filesystem: null.
 */
export async function probeExt(src: ProbeSource): Promise<FsProbe | null> {
  const h = src.head;
  if (h.length < SB + 1024 || h.readUInt16LE(SB + 56) !== MAGIC) return null;
  const sb = h.subarray(SB, SB + 1024);
  // Beyond the 2-byte magic: a revision, block size and group geometry mke2fs would write.
  const logBlock = sb.readUInt32LE(24);
  if (sb.readUInt32LE(76) > 1 || logBlock > 6 || sb.readUInt32LE(0) === 0) return null;
  if (sb.readUInt32LE(32) === 0 || sb.readUInt32LE(40) === 0) return null;
  const compat = sb.readUInt32LE(92);
  const incompat = sb.readUInt32LE(96);
  const roCompat = sb.readUInt32LE(100);
  if (incompat & INCOMPAT_JOURNAL_DEV) return null;
  const journal = (compat & COMPAT_HAS_JOURNAL) !== 0;
  const roBeyond = (roCompat & ~RO_COMPAT_EXT23) !== 0;
  let type: 'ext2' | 'ext3' | 'ext4' = 'ext4';
  if (!journal && !roBeyond && (incompat & ~INCOMPAT_EXT2) === 0) type = 'ext2';
  else if (journal && !roBeyond && (incompat & ~INCOMPAT_EXT3) === 0) type = 'ext3';
  const blockSize = 1024 * 2 ** logBlock;
  const blocks =
    BigInt(sb.readUInt32LE(4)) +
    (incompat & INCOMPAT_64BIT ? BigInt(sb.readUInt32LE(0x150)) << 32n : 0n);
  const label = sb.subarray(120, 136);
  const nul = label.indexOf(0);
  const labelText = label.subarray(0, nul === -1 ? 16 : nul).toString('utf8');
  return {
    type,
    uuid: isZero(sb, 104, 16) ? null : formatUuid(sb, 104),
    label: labelText.length === 0 ? null : labelText,
    size: safeProduct(blocks, blockSize),
    blockSize,
    features: [
      ...names(compat, COMPAT_NAMES),
      ...names(incompat, INCOMPAT_NAMES),
      ...names(roCompat, RO_COMPAT_NAMES),
    ],
  };
}
