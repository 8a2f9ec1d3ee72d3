import { isFormatName, WRITABLE_FORMATS, type WritableFormat } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { type Firmware, renderDisk, renderFilesystem } from '../../render/index.js';
import { LocalStore } from '../../store/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';
import { progressRenderer } from '../progress.js';
import { isStoreUrl } from '../store-location.js';
import { storeLocation } from './image.js';

export const buildHelp = `Usage: ferry build STREAM[@REV] --layout fs|disk --out FILE [--store DIR]
                   [--format raw|qcow2|vmdk|vhd|vhdx] [--size auto|SIZE] [--fs ext4|xfs]
                   [--boot grub|extlinux|none] [--firmware bios|uefi|both] [--table gpt|mbr]
                   [--margin PCT] [--base IMAGE|MAP] [--zero-freed] [--label NAME]
                   [--kernel-out FILE] [--initrd-out FILE] [--overwrite] [--output json]

Renders a revision as the bytes a cloud boots, deterministically: the same
revision and options give the same image on any machine.
  --layout fs     a partitionless filesystem at its smallest (the AMI of
                  an AMI/AKI/ARI triple); the newest kernel and initrd under
                  /boot go to FILE-kernel and FILE-initrd (or --kernel-out,
                  --initrd-out)
  --layout disk   a partitioned disk that boots with SeaBIOS and OVMF: GPT with
                  a BIOS boot partition and an EFI system partition (--firmware
                  both, the default), or MBR (--table mbr, BIOS only); GRUB finds
                  the root by UUID; /etc/fstab is written by UUID
  --fs ext4|xfs   the filesystem (default ext4); XFS is v5 with two or more
                  allocation groups of at least 16 MiB each, so at least 32 MiB
  --boot extlinux EXTLINUX in /boot/extlinux instead of GRUB; the firmware
                  defaults to bios (no BIOS boot partition on GPT: gptmbr.bin
                  boots the root); --firmware uefi or both adds syslinux.efi
                  with copies of the kernel and initrd on the ESP
  --size auto     (default) disk: the contents plus --margin free; fs: the minimum
  --margin PCT    disk, --size auto: free room as a percentage of the contents
                  (default 25; the cloud can grow the disk later)
  --base IMAGE    a previous render of this lineage (its FILE.ferry-map.json beside
                  it): unchanged files keep their inodes and blocks, and the output
                  reports how many 512 KiB chunks differ from IMAGE (the unit of an
                  incremental EBS snapshot). Freed blocks keep their old bytes
                  unless --zero-freed. The base must be of the same --fs.
  --base MAP      the same from that render's map alone (a .json path), when the
                  image itself is gone (uploaded, say): every block is written,
                  and the chunk digests in MAP say which chunks changed.
Every render writes FILE.ferry-map.json, the base for the next one: where each
path's inode and blocks are, and the SHA-256 of every 512 KiB chunk that holds data.`;

type Flags = Record<string, string | boolean | string[] | undefined>;

function usage(reason: string): FerryError {
  return new FerryError('FERRY_USAGE', `Cannot run build: ${reason}`);
}

/** "10G", "512M", "1048576" -> bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?B?|B)?$/i.exec(text.trim());
  if (m === null) throw usage(`--size "${text}" is not a size (say 8G, 512M or bytes)`);
  const unit = (m[2] ?? '').toUpperCase().replace(/I?B$/, '');
  const scale = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[unit] ?? 1;
  const n = Math.floor(Number(m[1]) * scale);
  if (!Number.isSafeInteger(n) || n <= 0) throw usage(`--size "${text}" is out of range`);
  return n;
}

function oneOf<T extends string>(
  flags: Flags,
  name: string,
  allowed: readonly T[],
  fallback?: T,
): T | undefined {
  const v = flags[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw usage(`--${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

export async function buildCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length !== 1) throw usage('give one STREAM[@REV]');
  const ref = args[0]!;
  const layout = oneOf(flags, 'layout', ['fs', 'disk'] as const);
  if (layout === undefined) throw usage('give --layout fs or --layout disk');
  const out = flags.out;
  if (typeof out !== 'string') throw usage('give --out FILE');
  const format = flags.format;
  if (
    format !== undefined &&
    (typeof format !== 'string' ||
      !isFormatName(format) ||
      !(WRITABLE_FORMATS as readonly string[]).includes(format))
  )
    throw usage(`--format must be one of ${WRITABLE_FORMATS.join(', ')}`);
  const fsType = oneOf(flags, 'fs', ['ext4', 'xfs'] as const, 'ext4')!;
  const boot = oneOf(flags, 'boot', ['grub', 'extlinux', 'none'] as const, 'grub');
  const firmware = oneOf(flags, 'firmware', ['bios', 'uefi', 'both'] as const);
  const table = oneOf(flags, 'table', ['gpt', 'mbr'] as const);
  const marginFlag = flags.margin;
  let margin: number | undefined;
  if (marginFlag !== undefined) {
    const m = /^(\d{1,4}(?:\.\d+)?)%?$/.exec(String(marginFlag));
    if (m === null || Number(m[1]) > 1000)
      throw usage(`--margin "${String(marginFlag)}" is not a percentage from 0 to 1000`);
    if (layout !== 'disk')
      throw usage('--margin is for --layout disk (a filesystem render is its minimum)');
    margin = Number(m[1]) / 100;
  }
  const sizeFlag = flags.size;
  const size =
    sizeFlag === undefined || sizeFlag === 'auto' ? undefined : parseSize(String(sizeFlag));
  const where = await storeLocation(flags);
  if (isStoreUrl(where))
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      `Cannot run build: it reads a local store, and ${where} is remote`,
      {
        hint: `Copy the stream first: ferry replicate --from ${where} --to DIR STREAM, then build --store DIR`,
      },
    );
  const store = await LocalStore.open(where);
  const { record } = await store.resolve(ref);
  const manifest = await store.getManifest(record.id, signal);
  const progress = progressRenderer(mode === 'human' && process.stderr.isTTY === true);
  const onProgress = (done: number, total: number): void =>
    progress.onEvent({ type: 'progress', operation: 'render', done, total });
  const common = {
    out,
    fs: fsType,
    ...(typeof format === 'string' ? { format: format as WritableFormat } : {}),
    ...(size === undefined ? {} : { size }),
    ...(typeof flags.base === 'string' ? { base: flags.base } : {}),
    ...(typeof flags.label === 'string' ? { label: flags.label } : {}),
    zeroFreed: flags['zero-freed'] === true,
    overwrite: flags.overwrite === true,
    signal,
    onProgress,
  };
  const started = performance.now();
  try {
    if (layout === 'fs') {
      const hasKernel = manifest.entries.some((e) =>
        /^boot\/(vmlinuz|vmlinux|bzImage)-/.test(e.path),
      );
      const kernelOut =
        typeof flags['kernel-out'] === 'string'
          ? flags['kernel-out']
          : hasKernel
            ? `${out}-kernel`
            : undefined;
      const initrdOut =
        typeof flags['initrd-out'] === 'string'
          ? flags['initrd-out']
          : hasKernel
            ? `${out}-initrd`
            : undefined;
      const r = await renderFilesystem(store, record.id, manifest, {
        ...common,
        ...(kernelOut === undefined ? {} : { kernelOut }),
        ...(initrdOut === undefined ||
        !manifest.entries.some((e) => /^boot\/(initrd|initramfs)/.test(e.path))
          ? {}
          : { initrdOut }),
      });
      progress.done();
      const seconds = (performance.now() - started) / 1000;
      if (mode === 'json') printJson({ layout, out, ...r, seconds });
      else
        process.stdout.write(
          `${out}: ${r.fs} ${r.uuid}, ${formatBytes(r.bytes)} (${r.inodes} inodes) from ${record.id.slice(0, 16)}… in ${seconds.toFixed(2)} s\n` +
            `  ${r.changedChunks} of ${r.totalChunks} 512 KiB chunks ${typeof flags.base === 'string' ? `differ from ${flags.base} (${r.keptFiles} files kept in place)` : 'hold data'}\n` +
            (r.kernel === null ? '' : `  kernel ${r.kernel.version}: ${r.kernel.path}\n`) +
            (r.initrd === null ? '' : `  initrd: ${r.initrd.path}\n`) +
            `  block map: ${r.map}\n`,
        );
      return 0;
    }
    const r = await renderDisk(store, record.id, manifest, {
      ...common,
      ...(table === undefined ? {} : { table }),
      ...(firmware === undefined ? {} : { firmware: firmware as Firmware }),
      ...(boot === undefined ? {} : { boot }),
      ...(margin === undefined ? {} : { margin }),
    });
    progress.done();
    const seconds = (performance.now() - started) / 1000;
    if (mode === 'json') printJson({ layout, out, ...r, seconds });
    else
      process.stdout.write(
        `${out}: ${r.table} disk for ${r.firmware}, ${formatBytes(r.bytes)}, root ${r.fs} ${r.rootUuid} from ${record.id.slice(0, 16)}… in ${seconds.toFixed(2)} s\n` +
          `  ${r.changedChunks} of ${r.totalChunks} 512 KiB chunks ${typeof flags.base === 'string' ? `differ from ${flags.base} (${r.keptFiles} files kept in place)` : 'hold data'}\n` +
          (r.kernel === null
            ? '  not bootable (--boot none)\n'
            : `  boots ${r.kernel} with ${r.bootloader === 'extlinux' ? 'EXTLINUX' : 'GRUB'}\n`) +
          `  block map: ${r.map}\n`,
      );
    return 0;
  } catch (error) {
    progress.done();
    throw error;
  }
}
