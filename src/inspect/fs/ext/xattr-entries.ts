/**
 * The entry table ext2/3/4 uses for extended attributes, both in the space
 * after an inode's extra fields and in an attribute block. Each entry is
 * 16 bytes (name length, name index, value offset, value inode, value size,
 * hash) followed by its name, padded to 4 bytes; a zero u32 ends the table.
 * Values sit after the table, at offsets relative to `base` (the first entry
 * in an inode, the block start in a block).
 */

/** Magic of the in-inode attribute area and of an attribute block header. */
export const EXT_XATTR_MAGIC = 0xea020000;
/** Bytes of an attribute block's header; its first entry follows. */
export const EXT_XATTR_BLOCK_HEADER = 32;
/** Bytes of an entry before its name. */
const ENTRY_FIXED = 16;

export interface ExtXattrEntry {
  readonly nameIndex: number;
  /** The name after the index's prefix (a view into the table's buffer). */
  readonly name: Buffer;
  readonly valueOffs: number;
  /** The inode holding the value (ea_inode feature), or 0 when it is in the table's area. */
  readonly valueInum: number;
  readonly valueSize: number;
}

export interface ExtXattrTable {
  readonly entries: readonly ExtXattrEntry[];
  /** The first byte after the table's terminator: values may not start before it. */
  readonly valuesStart: number;
}

/**
 * Reads the entries of the table at [start, end) of `buf`. A table that
 * fills its area without a terminator ends there. Every entry takes at least
 * 16 bytes, so the walk is bounded by the area's size.
 */
export function parseXattrEntries(
  buf: Buffer,
  start: number,
  end: number,
  fail: (reason: string) => Error,
): ExtXattrTable {
  const entries: ExtXattrEntry[] = [];
  let pos = start;
  while (pos + 4 <= end && buf.readUInt32LE(pos) !== 0) {
    if (pos + ENTRY_FIXED > end) throw fail('an extended attribute entry is truncated');
    const nameLen = buf[pos]!;
    const entryLen = (ENTRY_FIXED + nameLen + 3) & ~3;
    if (pos + entryLen > end) throw fail('an extended attribute name overruns its area');
    entries.push({
      nameIndex: buf[pos + 1]!,
      name: buf.subarray(pos + ENTRY_FIXED, pos + ENTRY_FIXED + nameLen),
      valueOffs: buf.readUInt16LE(pos + 2),
      valueInum: buf.readUInt32LE(pos + 4),
      valueSize: buf.readUInt32LE(pos + 8),
    });
    pos += entryLen;
  }
  return { entries, valuesStart: Math.min(end, pos + 4) };
}

/**
 * The value bytes of an entry stored in its table's area (valueInum 0):
 * [base + valueOffs, +valueSize), which must lie after the table and inside
 * the area. An empty value has no place to check.
 */
export function xattrValue(
  buf: Buffer,
  table: ExtXattrTable,
  entry: ExtXattrEntry,
  base: number,
  end: number,
  fail: (reason: string) => Error,
): Buffer {
  if (entry.valueSize === 0) return Buffer.alloc(0);
  const from = base + entry.valueOffs;
  if (from < table.valuesStart || entry.valueSize > end - from)
    throw fail('an extended attribute value lies outside its area');
  return buf.subarray(from, from + entry.valueSize);
}
