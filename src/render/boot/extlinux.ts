import { readFile } from 'node:fs/promises';
import { FerryError } from '../../errors/index.js';

/**
 * EXTLINUX installed without mounting anything. `extlinux --install DIR`
 * writes ldlinux.sys into a mounted filesystem, maps its sectors with FIBMAP
 * and patches them into the file and into the filesystem's boot sector; ferry
 * lays the filesystem out itself, so it knows the file's blocks after planning
 * and does the patching here. The boot sector and ldlinux.sys are the images
 * built into /usr/bin/extlinux (it carries them as arrays); ldlinux.c32 comes
 * from syslinux-common; the MBR code from the extlinux package. For UEFI,
 * syslinux.efi (syslinux-efi) and ldlinux.e64 go on the EFI system partition
 * with a copy of the kernel and initrd: syslinux.efi reads only its own
 * partition.
 */

export const EXTLINUX_BIN = '/usr/bin/extlinux';
const MBR_DIR = '/usr/lib/EXTLINUX';
const C32 = '/usr/lib/syslinux/modules/bios/ldlinux.c32';
const SYSLINUX_EFI = '/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi';
const E64 = '/usr/lib/syslinux/modules/efi64/ldlinux.e64';

/** The patch area's signature, at the start of ldlinux.sys's patch area and near the boot sector's end. */
export const LDLINUX_MAGIC = 0x3eb202fe;
const SECTOR = 512;
/** Two 512-byte copies of the auxiliary data vector follow the image in ldlinux.sys. */
const ADV_SIZE = 512;
const ADV_HEAD = 0x5a2d2fa5;
const ADV_SUM = 0xa3041767;
const ADV_TAIL = 0xdd28bf64;
/** ldlinux.sys loads at 0x8000; the rest of it goes in extents of under 64 KiB. */
const MAX_EXTENT_SECTORS = 127;

export interface ExtlinuxFiles {
  /** The 512-byte EXTLINUX boot sector (ldlinux.bss), unpatched. */
  readonly bootSector: Buffer;
  /** ldlinux.sys without its ADV, unpatched, a whole number of sectors. */
  readonly image: Buffer;
  /** Offset of the patch area in `image`. */
  readonly patchArea: number;
  readonly ldlinuxC32: Buffer;
  /** 440 bytes of MBR boot code: mbr.bin (MBR tables) and gptmbr.bin (GPT). */
  readonly mbr: Buffer;
  readonly gptmbr: Buffer;
  /** "SYSLINUX 6.04" as the image names itself. */
  readonly version: string;
}

const HINT = 'Install the extlinux and syslinux-common packages (syslinux 6.x)';

function missing(reason: string, cause?: unknown, hint = HINT): FerryError {
  return new FerryError('FERRY_RENDER_TOOL_MISSING', `Cannot install EXTLINUX: ${reason}`, {
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}

async function readTool(path: string, what: string, hint = HINT): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw missing(`${what} (${path}) cannot be read`, error, hint);
  }
}

/** SYSLINUX for x86-64 UEFI: the loader (EFI/BOOT/BOOTX64.EFI) and its ldlinux.e64. */
export interface SyslinuxEfiFiles {
  readonly loader: Buffer;
  readonly ldlinuxE64: Buffer;
}

export async function loadSyslinuxEfi(): Promise<SyslinuxEfiFiles> {
  const hint = 'Install the syslinux-efi and syslinux-common packages';
  const loader = await readTool(SYSLINUX_EFI, 'syslinux.efi', hint);
  const ldlinuxE64 = await readTool(E64, 'ldlinux.e64', hint);
  if (loader.subarray(0, 2).toString('latin1') !== 'MZ')
    throw missing(`${SYSLINUX_EFI} is not an EFI application`, undefined, hint);
  if (ldlinuxE64.subarray(0, 4).toString('latin1') !== '\x7fELF')
    throw missing(`${E64} is not a syslinux 6 module`, undefined, hint);
  return { loader, ldlinuxE64 };
}

/** Where each field of the patch area and the extended patch area is in ldlinux.sys. */
export interface PatchLayout {
  /** Offset of the patch area (its magic) in the image. */
  readonly pa: number;
  readonly advPtrs: number;
  readonly dir: number;
  readonly dirLen: number;
  readonly secPtrs: number;
  readonly secPtrCount: number;
  /** Offsets in the boot sector of the first sector's pointer (low and high dword). */
  readonly sect1Lo: number;
  readonly sect1Hi: number;
}

/** The patch area of a ldlinux.sys image whose patch area starts at `pa`, or null when its fields do not fit. */
export function patchLayout(image: Buffer, pa: number): PatchLayout | null {
  if (pa + 24 > image.length || image.readUInt32LE(pa) !== LDLINUX_MAGIC) return null;
  const epa = image.readUInt16LE(pa + 22);
  if (epa + 20 > image.length) return null;
  const f = (i: number): number => image.readUInt16LE(epa + 2 * i);
  const l: PatchLayout = {
    pa,
    advPtrs: f(0),
    dir: f(1),
    dirLen: f(2),
    secPtrs: f(5),
    secPtrCount: f(6),
    sect1Lo: f(7),
    sect1Hi: f(8),
  };
  const fits =
    l.advPtrs + 16 <= image.length &&
    l.dir + l.dirLen <= image.length &&
    l.secPtrs + 10 * l.secPtrCount <= image.length &&
    l.secPtrCount > 0 &&
    l.sect1Lo + 4 <= 0x1f8 &&
    l.sect1Hi + 4 <= 0x1f8;
  return fits ? l : null;
}

function findAll(hay: Buffer, needle: Buffer): number[] {
  const out: number[] = [];
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) out.push(i);
  return out;
}

/**
 * The boot sector and ldlinux.sys built into an extlinux binary. bin2c puts
 * each image in the data section as an array, and its length beside the
 * file's mtime among the constants. The boot sector is recognised by its own
 * copy of the magic before the 0x55AA signature; ldlinux.sys by its
 * "\r\nSYSLINUX " banner and a patch area whose fields fit; its length is
 * the bin2c length that sits beside the boot sector's mtime and ends the
 * image in its last non-zero sector. The boot sector checks ldlinux.sys's
 * per-build instance value, so both must carry the same one.
 */
export function extractExtlinux(
  bin: Buffer,
  name = EXTLINUX_BIN,
): { bootSector: Buffer; image: Buffer; patchArea: number; version: string } {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(LDLINUX_MAGIC);
  const hits = findAll(bin, magic);
  // The boot sector: 512 bytes ending in magic, forward pointer, 0x55AA, starting with a short jump.
  const sectors = hits
    .map((h) => h - 0x1f8)
    .filter(
      (s) =>
        s >= 0 &&
        s + SECTOR <= bin.length &&
        bin[s + 0x1fe] === 0x55 &&
        bin[s + 0x1ff] === 0xaa &&
        bin[s] === 0xeb,
    );
  if (sectors.length !== 1)
    throw missing(`${name} holds ${sectors.length} EXTLINUX boot sectors, not one`);
  const bootSector = Buffer.from(bin.subarray(sectors[0]!, sectors[0]! + SECTOR));
  // bin2c's length and mtime constants sit side by side (in either order); the boot sector's length is 512.
  const u32 = (q: number): number => (q >= 0 && q + 4 <= bin.length ? bin.readUInt32LE(q) : 0);
  const near512 = findAll(bin, Buffer.from([0, 2, 0, 0]))
    .filter((p) => p % 4 === 0)
    .flatMap((p) => [u32(p - 4), u32(p + 4)].filter((t) => t !== 0).map((t) => ({ p, t })));
  const banner = Buffer.from('\r\nSYSLINUX ');
  const found: { image: Buffer; patchArea: number; version: string }[] = [];
  for (const start of findAll(bin, banner)) {
    const pa = hits.find((h) => h > start && h - start <= 64 && (h - start) % 4 === 0);
    if (pa === undefined) continue;
    const instance = bin.subarray(pa + 4, pa + 8);
    if (bootSector.indexOf(instance) < 0) continue;
    // Lengths bin2c wrote beside the same mtime as the boot sector's 512.
    const lengths = new Set<number>();
    for (const { p, t } of near512)
      for (let q = Math.max(0, p - 64); q <= Math.min(bin.length - 4, p + 64); q += 4)
        if (u32(q - 4) === t || u32(q + 4) === t) lengths.add(u32(q));
    for (const len of lengths) {
      if (len % SECTOR !== 0 || len < 2 * SECTOR || start + len > bin.length) continue;
      const image = bin.subarray(start, start + len);
      let last = len - 1;
      while (last >= 0 && image[last] === 0) last--;
      if (last < len - SECTOR) continue;
      if (patchLayout(image, pa - start) === null) continue;
      const nameEnd = image.indexOf(0, 2);
      const version = image
        .subarray(2, nameEnd < 0 ? 32 : Math.min(nameEnd, 40))
        .toString('latin1')
        .trim();
      found.push({ image: Buffer.from(image), patchArea: pa - start, version });
    }
  }
  if (found.length !== 1)
    throw missing(
      `${name} holds ${found.length === 0 ? 'no' : found.length} recognisable ldlinux.sys image${found.length === 1 ? '' : 's'}`,
    );
  const { image, patchArea, version } = found[0]!;
  if (!/^SYSLINUX 6\./.test(version))
    throw missing(`${name} is ${version}; ferry installs syslinux 6.x`);
  return { bootSector, image, patchArea, version };
}

/** Everything an EXTLINUX install writes, from the installed packages. */
export async function loadExtlinux(bin = EXTLINUX_BIN): Promise<ExtlinuxFiles> {
  const { bootSector, image, patchArea, version } = extractExtlinux(
    await readTool(bin, 'extlinux'),
    bin,
  );
  const ldlinuxC32 = await readTool(C32, 'ldlinux.c32');
  if (ldlinuxC32.subarray(0, 4).toString('latin1') !== '\x7fELF')
    throw missing(`${C32} is not a syslinux 6 module`);
  const mbr = await readTool(`${MBR_DIR}/mbr.bin`, 'mbr.bin');
  const gptmbr = await readTool(`${MBR_DIR}/gptmbr.bin`, 'gptmbr.bin');
  if (mbr.length > 440 || gptmbr.length > 440)
    throw missing('mbr.bin or gptmbr.bin is longer than the 440 bytes of MBR boot code');
  const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(440 - b.length)]);
  return {
    bootSector,
    image,
    patchArea,
    ldlinuxC32,
    mbr: pad(mbr),
    gptmbr: pad(gptmbr),
    version,
  };
}

/** Two copies of an empty auxiliary data vector, as a fresh install writes them. */
export function emptyAdv(): Buffer {
  const one = Buffer.alloc(ADV_SIZE);
  one.writeUInt32LE(ADV_HEAD, 0);
  one.writeUInt32LE(ADV_SUM, 4);
  one.writeUInt32LE(ADV_TAIL, ADV_SIZE - 4);
  return Buffer.concat([one, one]);
}

/** ldlinux.sys as it goes into the tree before its sectors are known: the image and its ADV. */
export function unpatchedLdlinux(files: ExtlinuxFiles): Buffer {
  return Buffer.concat([files.image, emptyAdv()]);
}

/** What EXTLINUX boots, in the configuration ldlinux.c32 reads: absolute paths in its filesystem. */
export interface ExtlinuxEntry {
  readonly kernel: string;
  readonly initrd: string | null;
  readonly cmdline: string;
}

/** extlinux.conf: the serial console first (SERIAL must come first), then one entry, booted at once. */
export function extlinuxConfig(e: ExtlinuxEntry): string {
  for (const path of [e.kernel, e.initrd])
    if (path !== null && /[\s]/.test(path))
      throw new FerryError(
        'FERRY_RENDER_INPUT',
        `Cannot install EXTLINUX: its configuration cannot name ${path} (it has white space)`,
      );
  return [
    '# Written by ferry build.',
    'SERIAL 0 115200',
    'DEFAULT ferry',
    'PROMPT 0',
    'TIMEOUT 0',
    'LABEL ferry',
    `  LINUX ${e.kernel}`,
    ...(e.initrd === null ? [] : [`  INITRD ${e.initrd}`]),
    `  APPEND ${e.cmdline}`,
    '',
  ].join('\n');
}

export interface ExtlinuxPatch {
  /** Sectors of ldlinux.sys in file order, relative to the filesystem's start (at least the file's). */
  readonly sectors: readonly number[];
  /** The install directory as ldlinux.sys looks for its files: "/boot/extlinux". */
  readonly dir: string;
  /** The partition's first sector and length, for the boot sector's BIOS parameter block. */
  readonly partitionStart: number;
  readonly partitionSectors: number;
}

/** The negative checksum over the image's whole dwords that makes them sum to the magic. */
function checksum(image: Buffer, dwords: number): number {
  let sum = LDLINUX_MAGIC;
  for (let i = 0; i < dwords; i++) sum = (sum - image.readUInt32LE(i * 4)) >>> 0;
  return sum;
}

/**
 * Patches ldlinux.sys and the boot sector for where ldlinux.sys lies, as
 * syslinux's installer does: the boot sector gets the first sector's address
 * and the partition geometry; the patch area gets the sector counts, the rest
 * of the file as extents, the two ADV sectors, the install directory and the
 * checksum over the image.
 */
export function patchExtlinux(
  files: ExtlinuxFiles,
  p: ExtlinuxPatch,
): { ldlinux: Buffer; bootSector: Buffer } {
  const image = Buffer.from(files.image);
  const l = patchLayout(image, files.patchArea);
  if (l === null) throw missing('its ldlinux.sys has no patch area');
  const dataSectors = image.length / SECTOR;
  const nsect = dataSectors + 2;
  if (p.sectors.length < nsect)
    throw new FerryError(
      'FERRY_INTERNAL',
      `Cannot install EXTLINUX: ldlinux.sys has ${p.sectors.length} sectors, not ${nsect}`,
    );
  const sect = p.sectors.slice(0, nsect);

  // The boot sector: a FAT-style parameter block for the partition, and where ldlinux.sys starts.
  const bs = Buffer.from(files.bootSector);
  bs.writeUInt16LE(SECTOR, 0x0b);
  bs.writeUInt16LE(p.partitionSectors < 65536 ? p.partitionSectors : 0, 0x13);
  // The geometry extlinux assumes when the device reports none (only used without EDD).
  bs.writeUInt16LE(32, 0x18);
  bs.writeUInt16LE(64, 0x1a);
  bs.writeUInt32LE(p.partitionStart, 0x1c);
  bs.writeUInt32LE(Math.min(p.partitionSectors, 0xffffffff), 0x20);
  bs.writeUInt32LE(sect[0]! % 2 ** 32, l.sect1Lo);
  bs.writeUInt32LE(Math.floor(sect[0]! / 2 ** 32), l.sect1Hi);

  // The patch area: counts, extents for sectors 1 .. n-3, the two ADV sectors.
  image.writeUInt16LE(dataSectors, l.pa + 8);
  image.writeUInt16LE(2, l.pa + 10);
  const dwords = image.length >> 2;
  image.writeUInt32LE(dwords, l.pa + 12);
  const extents: { lba: number; len: number }[] = [];
  for (const s of sect.slice(1, nsect - 2)) {
    const last = extents[extents.length - 1];
    if (last !== undefined && s === last.lba + last.len && last.len < MAX_EXTENT_SECTORS)
      last.len++;
    else extents.push({ lba: s, len: 1 });
  }
  if (extents.length > l.secPtrCount)
    throw new FerryError(
      'FERRY_INTERNAL',
      `Cannot install EXTLINUX: ldlinux.sys is in ${extents.length} pieces; its patch area holds ${l.secPtrCount}`,
    );
  image.fill(0, l.secPtrs, l.secPtrs + 10 * l.secPtrCount);
  extents.forEach((x, i) => {
    image.writeBigUInt64LE(BigInt(x.lba), l.secPtrs + 10 * i);
    image.writeUInt16LE(x.len, l.secPtrs + 10 * i + 8);
  });
  image.writeBigUInt64LE(BigInt(sect[nsect - 2]!), l.advPtrs);
  image.writeBigUInt64LE(BigInt(sect[nsect - 1]!), l.advPtrs + 8);
  const dir = Buffer.from(`${p.dir}\0`);
  if (dir.length > l.dirLen)
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      `Cannot install EXTLINUX: the directory ${p.dir} is longer than ${l.dirLen - 1} bytes`,
    );
  image.fill(0, l.dir, l.dir + l.dirLen);
  dir.copy(image, l.dir);
  image.writeUInt32LE(0, l.pa + 16);
  image.writeUInt32LE(checksum(image, dwords), l.pa + 16);
  return { ldlinux: Buffer.concat([image, emptyAdv()]), bootSector: bs };
}

/** What a patched ldlinux.sys and boot sector say: read back by tests and by the render's own check. */
export interface ExtlinuxInstall {
  /** Every sector of ldlinux.sys the boot code loads, in order: the first, the extents, the two ADVs. */
  readonly sectors: number[];
  readonly dataSectors: number;
  readonly checksumOk: boolean;
  readonly dir: string;
  readonly hiddenSectors: number;
}

export function readExtlinuxInstall(ldlinux: Buffer, bootSector: Buffer): ExtlinuxInstall {
  const pa = ldlinux.indexOf(Buffer.from([0xfe, 0x02, 0xb2, 0x3e]));
  const l = pa < 0 ? null : patchLayout(ldlinux, pa);
  if (l === null)
    throw new FerryError('FERRY_RENDER_INPUT', 'Cannot read ldlinux.sys: it has no patch area');
  const dataSectors = ldlinux.readUInt16LE(l.pa + 8);
  const dwords = ldlinux.readUInt32LE(l.pa + 12);
  let sum = 0;
  for (let i = 0; i < dwords; i++) sum = (sum + ldlinux.readUInt32LE(i * 4)) >>> 0;
  const sectors = [
    bootSector.readUInt32LE(l.sect1Lo) + bootSector.readUInt32LE(l.sect1Hi) * 2 ** 32,
  ];
  for (let i = 0; i < l.secPtrCount; i++) {
    const len = ldlinux.readUInt16LE(l.secPtrs + 10 * i + 8);
    if (len === 0) break;
    const lba = Number(ldlinux.readBigUInt64LE(l.secPtrs + 10 * i));
    for (let k = 0; k < len; k++) sectors.push(lba + k);
  }
  sectors.push(Number(ldlinux.readBigUInt64LE(l.advPtrs)));
  sectors.push(Number(ldlinux.readBigUInt64LE(l.advPtrs + 8)));
  const dirEnd = ldlinux.indexOf(0, l.dir);
  return {
    sectors,
    dataSectors,
    checksumOk: sum === LDLINUX_MAGIC && dwords * 4 === dataSectors * SECTOR,
    dir: ldlinux.subarray(l.dir, Math.min(dirEnd, l.dir + l.dirLen)).toString('latin1'),
    hiddenSectors: bootSector.readUInt32LE(0x1c),
  };
}
