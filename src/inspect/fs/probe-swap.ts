import { cString, type FsProbe, type ProbeSource, safeProduct, uuidOrNull } from './probe-util.js';

/** Page sizes whose last 10 bytes may hold the swap signature (as blkid tries them). */
export const SWAP_PAGE_SIZES = [4096, 8192, 16384, 32768, 65536] as const;
const SWAP_MAGICS = ['SWAPSPACE2', 'SWAP-SPACE'];
/** Hibernation images written over a swap area. */
const SUSPEND_MAGICS = ['S1SUSPEND', 'S2SUSPEND', 'ULSUSPEND', 'LINHIB0001'];

function parseSwap(head: Buffer, pageSize: number, tail: Buffer): FsProbe | null {
  const magic = tail.toString('latin1');
  const suspended = SUSPEND_MAGICS.some((m) => magic.startsWith(m));
  if (!SWAP_MAGICS.includes(magic) && !suspended) return null;
  const base = {
    type: 'swap' as const,
    blockSize: pageSize,
    ...(suspended ? { features: ['hibernation-image'] } : {}),
  };
  // Version 1 header after the 1024 boot bytes, in the writer's byte order.
  if (magic === 'SWAP-SPACE' || head.length < 1024 + 44)
    return { ...base, uuid: null, label: null, size: null };
  const le = head.readUInt32LE(1024) === 1;
  const be = head.readUInt32BE(1024) === 1;
  if (!le && !be) return { ...base, uuid: null, label: null, size: null };
  const lastPage = le ? head.readUInt32LE(1028) : head.readUInt32BE(1028);
  return {
    ...base,
    uuid: uuidOrNull(head, 1036),
    label: cString(head, 1052, 16),
    size: safeProduct(lastPage + 1, pageSize),
    version: '1',
  };
}

/**
 * Linux swap: "SWAPSPACE2" (or the old "SWAP-SPACE", or a hibernation magic)
 * in the last 10 bytes of the first page, for the page sizes blkid tries.
 * UUID and label come from the version 1 header at 1024.
 */
export async function probeSwap(src: ProbeSource): Promise<FsProbe | null> {
  for (const ps of SWAP_PAGE_SIZES) {
    const tail =
      ps <= src.head.length ? src.head.subarray(ps - 10, ps) : await src.read(ps - 10, 10);
    if (tail === null) return null;
    const found = parseSwap(src.head, ps, tail);
    if (found !== null) return found;
  }
  return null;
}
