import { crc32c } from '../../util/crc32c.js';
import { BLOCK_SIZE } from './constants.js';

/**
 * The first block of a clean internal log, as mkfs.xfs leaves one: a log
 * record in cycle 1 at log block 0 whose only operation is an unmount
 * record, so head and tail meet there and nothing is replayed. The rest of
 * the log stays zeroed (the kernel reads that as unwritten).
 */
const RECORD_MAGIC = 0xfeedbabe;
const UNMOUNT_TID = 0xb0c0d0d0;
/** sizeof(struct xlog_rec_header): what the record CRC covers of the header sector. */
const HEADER_BYTES = 328;

export function cleanLogBlock(uuid: Buffer): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  // The data sector: an operation header (its first word is stored in the header's cycle data)
  // and the unmount record, which the kernel writes in host (little-endian) order.
  const data = b.subarray(512, 1024);
  data.writeUInt32BE(1, 0); // cycle number stamped over the first word
  data.writeUInt32BE(8, 4); // oh_len
  data[8] = 0xaa; // XFS_LOG client
  data[9] = 0x20; // XLOG_UNMOUNT_TRANS
  data.writeUInt16LE(0x556e, 12); // XLOG_UNMOUNT_TYPE
  b.writeUInt32BE(RECORD_MAGIC, 0);
  b.writeUInt32BE(1, 4); // cycle
  b.writeUInt32BE(2, 8); // version 2 log
  b.writeUInt32BE(512, 12); // bytes of data
  b.writeBigUInt64BE(1n << 32n, 16); // lsn: cycle 1, block 0
  b.writeBigUInt64BE(1n << 32n, 24); // tail lsn
  b.writeInt32BE(-1, 36); // no previous record
  b.writeUInt32BE(1, 40); // operations
  b.writeUInt32BE(UNMOUNT_TID, 44); // the data sector's first word
  b.writeUInt32BE(1, 300); // XLOG_FMT_LINUX_LE
  uuid.copy(b, 304);
  b.writeUInt32BE(32768, 320); // XLOG_HEADER_CYCLE_SIZE
  const crc = crc32c(data, crc32c(b.subarray(0, HEADER_BYTES)));
  b.writeUInt32LE(crc, 32);
  return b;
}
