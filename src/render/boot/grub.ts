import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../../errors/index.js';

const run = promisify(execFile);
const GRUB_LIB = '/usr/lib/grub';

/** What GRUB boots: the kernel and initrd paths inside the root filesystem, and the command line. */
export interface GrubBootEntry {
  readonly rootUuid: string;
  readonly kernel: string;
  readonly initrd: string | null;
  readonly cmdline: string;
}

/**
 * The configuration built into GRUB's core image. It runs in GRUB's rescue
 * parser before any module is loaded from disk, so it uses plain commands
 * only: find the root filesystem by UUID, load the kernel and initrd, boot.
 * Nothing of GRUB has to live in the root filesystem.
 */
export function grubConfig(e: GrubBootEntry): string {
  const lines = [
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `search --no-floppy --fs-uuid --set=root ${e.rootUuid}`,
    `linux /${e.kernel} ${e.cmdline}`,
    ...(e.initrd === null ? [] : [`initrd /${e.initrd}`]),
    'boot',
  ];
  return `${lines.join('\n')}\n`;
}

/** The root filesystems GRUB reads /boot from. */
export type RootFs = 'ext4' | 'xfs';

/** The modules every core image has, with the one that reads the root filesystem. */
const common = (fs: RootFs): string[] => [
  'part_gpt',
  'part_msdos',
  fs === 'xfs' ? 'xfs' : 'ext2',
  'search',
  'search_fs_uuid',
  'linux',
  'boot',
  'serial',
  'terminal',
];

async function mkimage(
  format: 'i386-pc' | 'x86_64-efi',
  prefix: string,
  config: string,
  modules: string[],
): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-grub-'));
  try {
    await writeFile(join(dir, 'early.cfg'), config);
    const out = join(dir, 'image');
    try {
      await run('grub-mkimage', [
        '-O',
        format,
        '-d',
        join(GRUB_LIB, format),
        '-o',
        out,
        '-p',
        prefix,
        '-c',
        join(dir, 'early.cfg'),
        ...modules,
      ]);
    } catch (error) {
      const e = error as { code?: string; stderr?: string };
      if (e.code === 'ENOENT')
        throw new FerryError(
          'FERRY_RENDER_TOOL_MISSING',
          'Cannot install GRUB: grub-mkimage is not installed',
          {
            hint: 'Install grub-pc-bin (BIOS) and grub-efi-amd64-bin (UEFI)',
          },
        );
      throw new FerryError(
        'FERRY_RENDER_TOOL_MISSING',
        `Cannot install GRUB: grub-mkimage failed: ${(e.stderr ?? '').trim().slice(0, 300)}`,
        {
          hint: `Is ${join(GRUB_LIB, format)} installed (grub-pc-bin / grub-efi-amd64-bin)?`,
          cause: error,
        },
      );
    }
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** GRUB for BIOS: the 440 bytes of MBR code and the core image, patched for the sector the core is written at. */
export async function grubBios(
  config: string,
  coreLba: number,
  maxSectors: number,
  fs: RootFs = 'ext4',
): Promise<{ mbrCode: Buffer; core: Buffer }> {
  const core = await mkimage('i386-pc', '/boot/grub', config, ['biosdisk', ...common(fs)]);
  let boot: Buffer;
  try {
    boot = await readFile(join(GRUB_LIB, 'i386-pc', 'boot.img'));
  } catch (error) {
    throw new FerryError('FERRY_RENDER_TOOL_MISSING', 'Cannot install GRUB: boot.img is missing', {
      cause: error,
      hint: 'Install grub-pc-bin',
    });
  }
  if (boot.length !== 512 || core.length < 1024)
    throw new FerryError(
      'FERRY_RENDER_TOOL_MISSING',
      'Cannot install GRUB: boot.img or core.img has an unexpected size',
    );
  const sectors = Math.ceil(core.length / 512);
  if (sectors > maxSectors)
    throw new FerryError(
      'FERRY_RENDER_LIMIT',
      `Cannot install GRUB: its core image (${sectors} sectors) does not fit ${maxSectors} sectors`,
    );
  const padded = Buffer.alloc(sectors * 512);
  core.copy(padded);
  // boot.img: where the core's first sector is, and no floppy drive check (what grub-bios-setup does for a hard disk).
  const mbrCode = Buffer.from(boot.subarray(0, 440));
  mbrCode.writeBigUInt64LE(BigInt(coreLba), 0x5c);
  mbrCode.writeUInt16LE(0x9090, 0x66);
  // diskboot.img (the core's first sector): one block list entry for the rest of the core.
  padded.writeBigUInt64LE(BigInt(coreLba + 1), 0x1f4);
  padded.writeUInt16LE(sectors - 1, 0x1fc);
  padded.writeUInt16LE(0x0820, 0x1fe);
  return { mbrCode, core: padded };
}

/** GRUB for UEFI: EFI/BOOT/BOOTX64.EFI, the removable-media path every firmware tries. */
export async function grubEfi(config: string, fs: RootFs = 'ext4'): Promise<Buffer> {
  return mkimage('x86_64-efi', '/EFI/BOOT', config, ['fat', 'efi_gop', ...common(fs)]);
}
