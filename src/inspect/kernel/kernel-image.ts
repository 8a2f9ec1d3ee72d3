/**
 * Facts from the first bytes of a kernel image file (/boot/vmlinuz-*), read
 * without decompressing anything: the x86 boot protocol header of a bzImage
 * carries the version string and whether the kernel is 64-bit; an arm64
 * Image carries its magic at 0x38.
 */
export type KernelArch = 'x86_64' | 'i386' | 'aarch64' | 'unknown';

export interface KernelImageFacts {
  readonly arch: KernelArch;
  /** The version string embedded in a bzImage (first word is what `uname -r` prints), or null. */
  readonly version: string | null;
  /** x86 boot protocol version, e.g. "2.15". */
  readonly bootProtocol: string | null;
}

/** Bytes of the kernel image inspection reads: the setup header and its version string. */
export const KERNEL_HEAD_BYTES = 64 * 1024;

export function parseKernelImage(head: Buffer): KernelImageFacts {
  if (head.length >= 0x40 && head.readUInt32LE(0x38) === 0x644d5241) {
    return { arch: 'aarch64', version: null, bootProtocol: null };
  }
  if (head.length < 0x240 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') {
    return { arch: 'unknown', version: null, bootProtocol: null };
  }
  const protocol = head.readUInt16LE(0x206);
  const bootProtocol = `${protocol >> 8}.${protocol & 0xff}`;
  let version: string | null = null;
  const ptr = head.readUInt16LE(0x20e);
  if (ptr !== 0 && ptr + 0x200 < head.length) {
    const start = ptr + 0x200;
    const end = head.indexOf(0, start);
    const raw = head.toString(
      'latin1',
      start,
      end < 0 ? Math.min(head.length, start + 256) : Math.min(end, start + 256),
    );
    const printable = raw.replace(/[^\x20-\x7e]/g, '').trim();
    version = printable === '' ? null : printable;
  }
  // xloadflags (protocol >= 2.12) bit 0: XLF_KERNEL_64, the kernel has a 64-bit entry point.
  let arch: KernelArch = 'i386';
  if (protocol >= 0x020c) {
    arch = (head.readUInt16LE(0x236) & 1) === 1 ? 'x86_64' : 'i386';
  } else if (version !== null && /x86_64|amd64/.test(version)) {
    arch = 'x86_64';
  }
  return { arch, version, bootProtocol };
}

/** The `uname -r` part of a version string ("6.1.0-18-amd64 (debian-kernel@...) #1 SMP ..."). */
export function releaseOf(version: string | null): string | null {
  if (version === null) return null;
  return version.split(/\s+/)[0] ?? null;
}
