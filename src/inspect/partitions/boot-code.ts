import type { BootCode } from './types.js';

/** Bytes of the MBR that hold boot code (the rest is the disk signature and the table). */
export const BOOT_CODE_BYTES = 440;

/**
 * The messages GRUB's first stage prints, identical in GRUB Legacy's stage1
 * and GRUB 2's boot.img (and boot_hybrid.img).
 */
const GRUB_MESSAGES = Buffer.from('GRUB \0Geom\0Hard Disk\0Read\0 Error', 'latin1');

/**
 * The start every SYSLINUX 4-6 MBR shares (mbr.bin, gptmbr.bin, altmbr.bin and
 * their _c/_f variants): xor ax,ax; cli; set up segments and stack; copy the
 * sector to 0x600.
 */
const SYSLINUX_PREFIX = Buffer.from('33c0fa8ed88ed0bc007c89e606578ec0fbfcbf0006b90001', 'hex');

/** Windows MBRs: NT 6+ (Vista to 11) and NT 5 (2000/XP) relocate themselves with these bytes. */
const WINDOWS_NT6_PREFIX = Buffer.from(
  '33c08ed0bc007c8ec08ed8be007cbf0006b90002fcf3a450681c06cb',
  'hex',
);
const WINDOWS_NT5_PREFIX = Buffer.from(
  '33c08ed0bc007cfb5007501ffcbe1b7cbf1b065057b9e501f3a4cb',
  'hex',
);
/** The English messages of Microsoft's MBRs (DOS to Windows 11); localized MBRs match by prefix. */
const WINDOWS_MESSAGES = [
  'Invalid partition table',
  'Error loading operating system',
  'Missing operating system',
].map((s) => Buffer.from(s, 'latin1'));

function has(code: Buffer, needle: Buffer): boolean {
  return code.indexOf(needle) !== -1;
}

/**
 * Names the boot code in the first 440 bytes of a disk: 'none' when they are
 * all zero, 'unknown' when they are not but match no known loader.
 */
export function detectBootCode(sector0: Buffer): BootCode {
  const code = sector0.subarray(0, BOOT_CODE_BYTES);
  if (code.length === 0 || code.every((b) => b === 0)) return 'none';
  if (has(code, GRUB_MESSAGES)) {
    // GRUB Legacy's stage1: "jmp 0x4a", then stage1 version 3.2 right after the BPB at 0x3e.
    if (code[0] === 0xeb && code[1] === 0x48 && code[0x3e] === 3) return 'grub-legacy';
    return 'grub2';
  }
  if (code.subarray(0, SYSLINUX_PREFIX.length).equals(SYSLINUX_PREFIX)) return 'syslinux';
  // A SYSLINUX/EXTLINUX volume boot record at sector 0 of a partitionless disk.
  const oem = code.toString('latin1', 3, 11);
  if (code[0] === 0xeb && (oem === 'SYSLINUX' || oem === 'EXTLINUX')) return 'syslinux';
  const text = (s: string): boolean => has(code, Buffer.from(s, 'latin1'));
  if (
    text('Multiple active partitions') &&
    (text('Missing OS') || text('Operating system load error'))
  ) {
    return 'syslinux';
  }
  if (
    code.subarray(0, WINDOWS_NT6_PREFIX.length).equals(WINDOWS_NT6_PREFIX) ||
    code.subarray(0, WINDOWS_NT5_PREFIX.length).equals(WINDOWS_NT5_PREFIX)
  ) {
    return 'windows';
  }
  if (WINDOWS_MESSAGES.filter((m) => has(code, m)).length >= 2) return 'windows';
  return 'unknown';
}
