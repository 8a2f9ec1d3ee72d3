import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { throwIfAborted } from '../../file-source.js';
import { HEADER_SECTION_SIZE, LOG_ENTRY_SIGNATURE, LOG_SECTOR_SIZE, MiB } from './constants.js';
import type { VhdxHeader } from './header.js';
import type { FileRegion } from './region-table.js';
import { checksumOf } from './structures.js';

/** Largest log ferry scans for live entries (qemu's default log is 1 MiB, Hyper-V's 1 MiB). */
const MAX_LOG_SCAN = 1024 * MiB;
/** Bytes of candidate log entries whose CRC ferry checks before giving up. */
const MAX_ENTRY_CRC_BYTES = 64 * MiB;
const SCAN_CHUNK = MiB;

function bad(source: ByteSource, reason: string, details: Record<string, string | number> = {}) {
  return new FerryError('FERRY_VHDX_BAD_HEADER', `Cannot open ${source.name}: ${reason}`, {
    details,
  });
}

function replay(source: ByteSource, reason: string): FerryError {
  return new FerryError(
    'FERRY_VHDX_LOG_REPLAY',
    `Cannot open ${source.name}: ${reason}; ferry never replays a VHDX log`,
    {
      hint: 'Attach the disk once in Hyper-V (or open it read-write with qemu-img) to replay its log',
    },
  );
}

/**
 * Checks the log the active header describes and returns its file region
 * (null when it has none). A log whose GUID is non-zero and that holds a valid
 * entry with that GUID would have to be replayed before the disk reads
 * correctly: such an image is refused, never replayed.
 */
export async function checkLog(
  source: ByteSource,
  header: VhdxHeader,
  signal?: AbortSignal,
): Promise<FileRegion | null> {
  const mib = BigInt(MiB);
  if (header.logOffset % mib !== 0n || header.logOffset < BigInt(HEADER_SECTION_SIZE)) {
    throw bad(
      source,
      `the log offset ${header.logOffset} is not a 1 MiB multiple past the header section`,
      {
        logOffset: header.logOffset.toString(),
      },
    );
  }
  if (header.logVersion !== 0) {
    throw bad(source, `the log version ${header.logVersion} is not 0`, {
      logVersion: header.logVersion,
    });
  }
  const length = header.logLength;
  if (length === 0) return null;
  if (header.logOffset + BigInt(length) > BigInt(source.size)) {
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot open ${source.name}: the log (${header.logOffset}+${length}) extends past the end of the file (${source.size})`,
      { details: { logOffset: header.logOffset.toString(), logLength: length, size: source.size } },
    );
  }
  const region: FileRegion = { name: 'log', offset: Number(header.logOffset), length };
  if (header.logGuid.every((b) => b === 0)) return region;

  if (length % MiB !== 0) throw bad(source, `the log length ${length} is not a 1 MiB multiple`);
  if (length > MAX_LOG_SCAN)
    throw replay(source, `the log is active and too large (${length} bytes) to check`);

  /** Reads `len` bytes of the circular log from log position `pos`. */
  const readWrapped = async (pos: number, len: number): Promise<Buffer> => {
    const first = Math.min(len, length - pos);
    const a = await source.read(region.offset + pos, first, signal);
    if (first === len) return a;
    const b = await source.read(region.offset, len - first, signal);
    return Buffer.concat([a, b]);
  };

  let crcBudget = MAX_ENTRY_CRC_BYTES;
  for (let base = 0; base < length; base += SCAN_CHUNK) {
    throwIfAborted(signal);
    const chunk = await source.read(
      region.offset + base,
      Math.min(SCAN_CHUNK, length - base),
      signal,
    );
    for (let s = 0; s + LOG_SECTOR_SIZE <= chunk.length; s += LOG_SECTOR_SIZE) {
      if (chunk.toString('latin1', s, s + 4) !== LOG_ENTRY_SIGNATURE) continue;
      if (!chunk.subarray(s + 32, s + 48).equals(header.logGuid)) continue;
      const entryLength = chunk.readUInt32LE(s + 8);
      const sequence = chunk.readBigUInt64LE(s + 16);
      if (
        entryLength < LOG_SECTOR_SIZE ||
        entryLength % LOG_SECTOR_SIZE !== 0 ||
        entryLength > length ||
        sequence === 0n
      ) {
        continue;
      }
      crcBudget -= entryLength;
      if (crcBudget < 0)
        throw replay(source, 'the log is active and holds too many candidate entries to check');
      const entry = await readWrapped(base + s, entryLength);
      if (checksumOf(entry) === entry.readUInt32LE(4)) {
        throw replay(source, 'the log is not empty (it holds entries that were never applied)');
      }
    }
  }
  return region;
}
