/**
 * Builds the inspect corpus: real Debian disk images made from the trees
 * that scripts/make-debian-root.sh caches (debootstrap bookworm with the
 * Debian cloud kernel and a real initramfs, and Debian's i386 686-pae
 * kernel). Every image comes with the facts it was built with, so tests can
 * assert inspect's report against how the image was made, not against a
 * copy of an earlier report.
 *
 *   node dist/scripts/inspect-corpus.js OUTDIR [--all] [--size 1G]
 *
 * Without --all it builds the subset CI uses (one MBR ext4 GRUB disk and its
 * conversions, the partitionless filesystem, the broken variants); --all adds
 * the GPT + ESP + XFS disk and every conversion. No loop device, mount or
 * chroot: mke2fs -d and mkfs.xfs -p fill filesystems from the tree, sfdisk
 * and sgdisk write partition tables, mtools fills the ESP, grub-mkimage
 * builds GRUB's core images.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const MiB = 1024 * 1024;
const GRUB_PC = '/usr/lib/grub/i386-pc';
const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';

/** What an image was built with: what inspect must find. */
export interface CorpusFacts {
  readonly name: string;
  readonly path: string;
  readonly format: 'raw' | 'qcow2' | 'vmdk' | 'vhd' | 'vhdx' | 'vdi' | 'ova';
  readonly partitionTable: 'mbr' | 'gpt' | 'none';
  /** [partition index or null, filesystem type, uuid] per filesystem made. */
  readonly filesystems: ReadonlyArray<readonly [number | null, string, string | null]>;
  readonly rootPartition: number | null;
  /** null when the OS identification files were removed. */
  readonly os: { readonly distro: string; readonly version: string } | null;
  readonly kernels: ReadonlyArray<{
    readonly version: string;
    readonly arch: 'x86_64' | 'i386';
    readonly initrd: string | null;
  }>;
  readonly bootloader: 'grub2' | 'extlinux' | 'none';
  readonly firmware: ReadonlyArray<'bios' | 'uefi'>;
  /**
   * Whether VM Import should take the image (verdict "pass"), and the finding
   * codes the defect built into it must raise.
   */
  readonly awsImportPasses: boolean;
  readonly mustFind: readonly string[];
}

export interface CorpusTrees {
  readonly root: string;
  readonly i386Kernel: string;
}

/** The cached trees, or null (with the reason) when make-debian-root.sh has not run. */
export function corpusTrees(): { trees: CorpusTrees } | { missing: string } {
  const cache = process.env.FERRY_CORPUS_CACHE ?? join(homedir(), '.cache', 'ferry');
  const root = join(cache, 'debian-12-root');
  const i386 = join(cache, 'i386-kernel', 'tree');
  if (!existsSync(join(root, '.ferry-complete')))
    return { missing: `no Debian tree at ${root} (run scripts/make-debian-root.sh as root)` };
  if (!existsSync(join(cache, 'i386-kernel', '.ferry-complete')))
    return { missing: `no i386 kernel at ${i386} (run scripts/make-debian-root.sh as root)` };
  const tools = ['mke2fs', 'mkfs.xfs', 'sfdisk', 'sgdisk', 'qemu-img', 'grub-mkimage', 'mcopy'];
  for (const t of tools) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return { missing: `${t} missing` };
  }
  return { trees: { root, i386Kernel: i386 } };
}

/** A UUID derived from a name, so every build of the corpus is the same. */
function uuidOf(name: string): string {
  const h = createHash('sha256').update(`ferry-corpus:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function run(cmd: string, args: readonly string[], input?: string): void {
  execFileSync(cmd, args, {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    ...(input === undefined ? {} : { input }),
    env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000', MTOOLS_SKIP_CHECK: '1' },
  });
}

function kernelsIn(root: string): string[] {
  return readdirSync(join(root, 'boot'))
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length));
}

/** The tree's own Debian version (/etc/debian_version, e.g. "12.12"). */
function debianVersion(root: string): string {
  return readFileSync(join(root, 'etc/debian_version'), 'utf8').trim();
}

/** The kernels (with their initrd, if any) and the Debian release a staged tree holds. */
function treeFacts(
  root: string,
  arch: 'x86_64' | 'i386' = 'x86_64',
): Pick<CorpusFacts, 'kernels' | 'os'> {
  const kernels = kernelsIn(root).map((v) => ({
    version: v,
    arch,
    initrd: existsSync(join(root, `boot/initrd.img-${v}`)) ? `/boot/initrd.img-${v}` : null,
  }));
  const version = existsSync(join(root, 'etc/debian_version')) ? debianVersion(root) : null;
  return { kernels, os: version === null ? null : { distro: 'debian', version } };
}

async function sparseFile(path: string, size: number): Promise<void> {
  await rm(path, { force: true });
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
}

/** Copies the cached tree to `dir` (hard links would share inodes with the cache). */
async function stageTree(trees: CorpusTrees, dir: string): Promise<string> {
  const root = join(dir, 'tree');
  await rm(root, { recursive: true, force: true });
  // Hard links: fast and small. Files the builder changes are replaced, never
  // written through (replaceFile), so the cached tree stays as debootstrap left it.
  run('cp', ['-al', trees.root, root]);
  await rm(join(root, '.ferry-complete'), { force: true });
  return root;
}

/** Writes a file as a new inode (the old name may be a hard link into the cache). */
async function replaceFile(path: string, data: string): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, data);
}

async function writeBootConfig(root: string, rootUuid: string, fsType: string): Promise<void> {
  const entries = kernelsIn(root).map((v) => {
    const initrd = existsSync(join(root, `boot/initrd.img-${v}`))
      ? `\n  initrd /boot/initrd.img-${v}`
      : '';
    return `menuentry 'Debian GNU/Linux, with Linux ${v}' {\n  search --no-floppy --fs-uuid --set=root ${rootUuid}\n  linux /boot/vmlinuz-${v} root=UUID=${rootUuid} ro console=ttyS0,115200${initrd}\n}\n`;
  });
  await mkdir(join(root, 'boot/grub'), { recursive: true });
  await replaceFile(
    join(root, 'boot/grub/grub.cfg'),
    `set default=0\nset timeout=1\nserial --unit=0 --speed=115200\nterminal_output serial console\n${entries.join('')}`,
  );
  await replaceFile(join(root, 'etc/fstab'), `UUID=${rootUuid} / ${fsType} defaults 0 1\n`);
  await replaceFile(join(root, 'etc/hostname'), 'ferry-corpus\n');
}

/**
 * The start of every image built from the tree: a work directory, a staged
 * copy of the tree (changed by `tweak`), its root UUID from the image's name,
 * and GRUB's configuration and fstab for that UUID.
 */
async function stageImage(
  trees: CorpusTrees,
  out: string,
  name: string,
  fsType: 'ext4' | 'xfs',
  tweak: (root: string) => Promise<void> = async () => {},
): Promise<{ dir: string; root: string; uuid: string }> {
  const dir = join(out, `${name}.work`);
  await mkdir(dir, { recursive: true });
  const root = await stageTree(trees, dir);
  const uuid = uuidOf(name);
  await tweak(root);
  await writeBootConfig(root, uuid, fsType);
  return { dir, root, uuid };
}

/** Replaces GRUB's configuration with an extlinux.conf booting the same kernels. */
async function useExtlinux(root: string, rootUuid: string): Promise<void> {
  await rm(join(root, 'boot/grub'), { recursive: true, force: true });
  const labels = kernelsIn(root).map((v) => {
    const initrd = existsSync(join(root, `boot/initrd.img-${v}`))
      ? `\n  INITRD /boot/initrd.img-${v}`
      : '';
    return `LABEL ${v}\n  KERNEL /boot/vmlinuz-${v}${initrd}\n  APPEND root=UUID=${rootUuid} ro console=ttyS0,115200\n`;
  });
  await mkdir(join(root, 'boot/extlinux'), { recursive: true });
  await writeFile(
    join(root, 'boot/extlinux/extlinux.conf'),
    `SERIAL 0 115200\nDEFAULT ${kernelsIn(root)[0] ?? 'linux'}\nTIMEOUT 10\n${labels.join('')}`,
  );
}

/** An xfs_mkfs(8) proto file for `root` (hard links become copies, as the format allows). */
function xfsProto(root: string): string {
  const lines = ['/dev/null', '0 0'];
  const modeOf = (mode: number, type: string): string =>
    `${type}${mode & 0o4000 ? 'u' : '-'}${mode & 0o2000 ? 'g' : '-'}${(mode & 0o777).toString(8).padStart(3, '0')}`;
  const st = lstatSync(root);
  lines.push(`${modeOf(st.mode, 'd')} ${st.uid} ${st.gid}`);
  const walk = (dir: string, depth: number): void => {
    for (const name of readdirSync(dir).sort()) {
      if (/\s/.test(name) || name === '$') continue;
      const p = join(dir, name);
      const s = lstatSync(p);
      const pad = ' '.repeat(depth);
      if (s.isDirectory()) {
        lines.push(`${pad}${name} ${modeOf(s.mode, 'd')} ${s.uid} ${s.gid}`);
        walk(p, depth + 1);
        lines.push(`${pad}$`);
      } else if (s.isSymbolicLink()) {
        const target = execFileSync('readlink', [p], { encoding: 'utf8' }).trimEnd();
        if (/\s/.test(target)) continue;
        lines.push(`${pad}${name} ${modeOf(s.mode, 'l')} ${s.uid} ${s.gid} ${target}`);
      } else if (s.isFile()) {
        lines.push(`${pad}${name} ${modeOf(s.mode, '-')} ${s.uid} ${s.gid} ${p}`);
      } else if (s.isCharacterDevice() || s.isBlockDevice()) {
        const major = Math.floor(s.rdev / 256) & 0xfff;
        const minor = (s.rdev & 0xff) | ((s.rdev >> 12) & 0xfff00);
        const t = s.isCharacterDevice() ? 'c' : 'b';
        lines.push(`${pad}${name} ${modeOf(s.mode, t)} ${s.uid} ${s.gid} ${major} ${minor}`);
      } else if (s.isFIFO()) {
        lines.push(`${pad}${name} ${modeOf(s.mode, 'p')} ${s.uid} ${s.gid}`);
      }
    }
  };
  walk(root, 1);
  lines.push('$');
  return `${lines.join('\n')}\n`;
}

/** Writes a filesystem image of `root` into `disk` at `offset` (a file of `size` bytes). */
async function makeFs(
  dir: string,
  root: string,
  type: 'ext4' | 'xfs',
  uuid: string,
  size: number,
): Promise<string> {
  const fs = join(dir, `fs-${type}.img`);
  await sparseFile(fs, size);
  if (type === 'ext4') {
    run('mke2fs', [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-U',
      uuid,
      '-E',
      `hash_seed=${uuid},lazy_itable_init=0,lazy_journal_init=0`,
      '-L',
      'root',
      '-d',
      root,
      fs,
    ]);
  } else {
    const proto = join(dir, 'xfs.proto');
    await writeFile(proto, xfsProto(root));
    run('mkfs.xfs', ['-q', '-f', '-m', `uuid=${uuid}`, '-L', 'root', '-p', proto, fs]);
  }
  return fs;
}

function dd(from: string, to: string, offsetBytes: number): void {
  run('dd', [
    `if=${from}`,
    `of=${to}`,
    'bs=1M',
    `seek=${offsetBytes / MiB}`,
    'conv=notrunc,sparse',
    'status=none',
  ]);
}

/**
 * GRUB 2's boot.img in the MBR's first 440 bytes and core.img where
 * grub-install puts it: right after the MBR on an MBR disk, in the BIOS boot
 * partition on a GPT disk (boot.img's kernel-sector field points at it).
 */
function installGrubBios(
  disk: string,
  dir: string,
  partMod: 'part_msdos' | 'part_gpt',
  coreSector = 1,
): void {
  const core = join(dir, 'core.img');
  run('grub-mkimage', [
    '-O',
    'i386-pc',
    '-o',
    core,
    '-p',
    partMod === 'part_msdos' ? '(hd0,msdos1)/boot/grub' : '(hd0,gpt3)/boot/grub',
    'biosdisk',
    partMod,
    'ext2',
    'xfs',
    'normal',
    'search',
    'linux',
  ]);
  const bootImg = readFileSync(join(GRUB_PC, 'boot.img'));
  bootImg.writeBigUInt64LE(BigInt(coreSector), 0x5c);
  const bootFile = join(dir, 'boot.img');
  writeFileSync(bootFile, bootImg.subarray(0, 440));
  run('dd', [`if=${bootFile}`, `of=${disk}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
  run('dd', [
    `if=${core}`,
    `of=${disk}`,
    'bs=512',
    `seek=${coreSector}`,
    'conv=notrunc',
    'status=none',
  ]);
}

/** An MBR disk: GRUB in the MBR gap, one bootable ext4 partition from 1 MiB. */
async function mbrExt4(
  trees: CorpusTrees,
  out: string,
  name: string,
  size: number,
  tweak: (root: string) => Promise<void>,
  expect: Pick<CorpusFacts, 'awsImportPasses' | 'mustFind'> & {
    os?: CorpusFacts['os'];
    arch?: 'x86_64' | 'i386';
    /** extlinux: extlinux.conf and SYSLINUX's MBR code instead of GRUB. */
    loader?: 'grub2' | 'extlinux';
  },
): Promise<CorpusFacts> {
  const { os: osExpected, arch, loader = 'grub2', ...verdict } = expect;
  const { dir, root, uuid } = await stageImage(trees, out, name, 'ext4', tweak);
  if (loader === 'extlinux') await useExtlinux(root, uuid);
  const facts = treeFacts(root, arch);
  const kernels = facts.kernels;
  const os = osExpected !== undefined ? osExpected : facts.os;
  const fs = await makeFs(dir, root, 'ext4', uuid, size - 2 * MiB);
  const disk = join(out, `${name}.raw`);
  await sparseFile(disk, size);
  run(
    'sfdisk',
    ['-q', '--no-reread', '--no-tell-kernel', disk],
    'label: dos\nlabel-id: 0x46455259\nstart=2048, type=83, bootable\n',
  );
  dd(fs, disk, MiB);
  if (loader === 'grub2') installGrubBios(disk, dir, 'part_msdos');
  else
    run('dd', [
      `if=${SYSLINUX_MBR}`,
      `of=${disk}`,
      'bs=440',
      'count=1',
      'conv=notrunc',
      'status=none',
    ]);
  await rm(dir, { recursive: true, force: true });
  return {
    name,
    path: disk,
    format: 'raw',
    partitionTable: 'mbr',
    filesystems: [[1, 'ext4', uuid]],
    rootPartition: 1,
    os,
    kernels,
    bootloader: loader,
    firmware: ['bios'],
    ...verdict,
  };
}

/** GPT: BIOS boot partition, EFI system partition (GRUB's BOOTX64.EFI), XFS root. */
async function gptXfs(trees: CorpusTrees, out: string, size: number): Promise<CorpusFacts> {
  const name = 'gpt-uefi-xfs';
  const { dir, root, uuid } = await stageImage(trees, out, name, 'xfs');
  const rootStart = 66 * MiB;
  const fs = await makeFs(dir, root, 'xfs', uuid, size - rootStart - MiB);
  const esp = join(dir, 'esp.img');
  await sparseFile(esp, 64 * MiB);
  run('mkfs.vfat', ['-F', '32', '-n', 'EFI', '-i', '46455259', esp]);
  const efi = join(dir, 'BOOTX64.EFI');
  run('grub-mkimage', [
    '-O',
    'x86_64-efi',
    '-o',
    efi,
    '-p',
    '(hd0,gpt3)/boot/grub',
    'part_gpt',
    'xfs',
    'fat',
    'normal',
    'search',
    'linux',
  ]);
  run('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT']);
  run('mcopy', ['-i', esp, efi, '::/EFI/BOOT/BOOTX64.EFI']);
  const disk = join(out, `${name}.raw`);
  await sparseFile(disk, size);
  run('sgdisk', [
    '-U',
    uuidOf(`${name}-disk`),
    '-n',
    '1:2048:+1M',
    '-t',
    '1:ef02',
    '-n',
    '2:4096:+64M',
    '-t',
    '2:ef00',
    '-n',
    `3:${rootStart / 512}:0`,
    '-t',
    '3:8304',
    disk,
  ]);
  dd(esp, disk, 2 * MiB);
  dd(fs, disk, rootStart);
  installGrubBios(disk, dir, 'part_gpt', 2048);
  const { kernels, os } = treeFacts(root);
  await rm(dir, { recursive: true, force: true });
  return {
    name,
    path: disk,
    format: 'raw',
    partitionTable: 'gpt',
    filesystems: [
      // mkfs.vfat -i 46455259: the volume id, written as blkid does.
      [2, 'vfat', '4645-5259'],
      [3, 'xfs', uuid],
    ],
    rootPartition: 3,
    os,
    kernels,
    bootloader: 'grub2',
    firmware: ['bios', 'uefi'],
    awsImportPasses: true,
    mustFind: [],
  };
}

/** A filesystem with no partition table: the "AMI" of an AMI/AKI/ARI triple. */
async function partitionless(trees: CorpusTrees, out: string, size: number): Promise<CorpusFacts> {
  const name = 'partitionless-ext4';
  const { dir, root, uuid } = await stageImage(trees, out, name, 'ext4');
  const fs = await makeFs(dir, root, 'ext4', uuid, size);
  const disk = join(out, `${name}.raw`);
  await rm(disk, { force: true });
  run('mv', [fs, disk]);
  const { kernels, os } = treeFacts(root);
  await rm(dir, { recursive: true, force: true });
  return {
    name,
    path: disk,
    format: 'raw',
    partitionTable: 'none',
    filesystems: [[null, 'ext4', uuid]],
    rootPartition: null,
    os,
    kernels,
    // GRUB's configuration is in the tree, but no firmware can start it: no boot code.
    bootloader: 'grub2',
    firmware: [],
    awsImportPasses: false,
    mustFind: ['NO_PARTITIONS', 'PARTITIONLESS_ROOT'],
  };
}

async function emptyPartitions(out: string, size: number): Promise<CorpusFacts> {
  const disk = join(out, 'empty-partitions.raw');
  await sparseFile(disk, size);
  run(
    'sfdisk',
    ['-q', '--no-reread', '--no-tell-kernel', disk],
    'label: dos\nstart=2048, size=65536, type=83\nstart=67584, type=83\n',
  );
  return {
    name: 'empty-partitions',
    path: disk,
    format: 'raw',
    partitionTable: 'mbr',
    filesystems: [],
    rootPartition: null,
    os: null,
    kernels: [],
    bootloader: 'none',
    firmware: [],
    awsImportPasses: false,
    mustFind: ['NO_OS'],
  };
}

async function zeros(out: string, size: number): Promise<CorpusFacts> {
  const disk = join(out, 'zeros.raw');
  // An all-zero disk: nothing for any reader to find.
  await sparseFile(disk, size);
  return {
    name: 'zeros',
    path: disk,
    format: 'raw',
    partitionTable: 'none',
    filesystems: [],
    rootPartition: null,
    os: null,
    kernels: [],
    bootloader: 'none',
    firmware: [],
    awsImportPasses: false,
    mustFind: ['DISK_EMPTY'],
  };
}

function virtualSize(path: string): number {
  const info = JSON.parse(
    execFileSync('qemu-img', ['info', '--output', 'json', path], { encoding: 'utf8' }),
  ) as { 'virtual-size': number };
  return info['virtual-size'];
}

const QEMU_FORMATS = [
  ['qcow2', 'qcow2', []],
  ['vmdk', 'vmdk', ['-o', 'subformat=streamOptimized']],
  ['vhd', 'vpc', ['-o', 'subformat=dynamic']],
  ['vhdx', 'vhdx', []],
  ['vdi', 'vdi', []],
] as const;

/** The same disk in the other formats (qemu-img), and as an OVA (ferry's writer). */
async function conversions(base: CorpusFacts, all: boolean): Promise<CorpusFacts[]> {
  const out: CorpusFacts[] = [];
  const formats = all ? QEMU_FORMATS : QEMU_FORMATS.filter(([f]) => f === 'qcow2' || f === 'vmdk');
  for (const [fmt, qemuFmt, opts] of formats) {
    const path = base.path.replace(/\.raw$/, `.${fmt}`);
    await rm(path, { force: true });
    run('qemu-img', ['convert', '-f', 'raw', '-O', qemuFmt, ...opts, base.path, path]);
    // VM Import takes only stream-optimized VMDKs, VHD(X), raw and OVA; qcow2 and VDI fail.
    const importable = fmt === 'vmdk' || fmt === 'vhd' || fmt === 'vhdx';
    const mustFind = importable ? [...base.mustFind] : [...base.mustFind, 'FORMAT_NOT_IMPORTABLE'];
    // qemu-img rounds a VHD up to whole CHS cylinders: the disk grows, and a
    // GPT's backup header is no longer in the last sector, which inspect reports.
    const grew = virtualSize(path) !== virtualSize(base.path);
    if (grew && base.partitionTable === 'gpt') mustFind.push('GPT_BACKUP_PROBLEM');
    out.push({
      ...base,
      name: `${base.name}.${fmt}`,
      path,
      format: fmt,
      awsImportPasses:
        importable && base.awsImportPasses && !(grew && base.partitionTable === 'gpt'),
      mustFind,
    });
  }
  if (all) {
    const { convertImage } = await import('../src/disk/index.js');
    const path = base.path.replace(/\.raw$/, '.ova');
    await rm(path, { force: true });
    await convertImage(base.path, path, { to: 'ova' });
    out.push({ ...base, name: `${base.name}.ova`, path, format: 'ova' });
  }
  return out;
}

export interface BuildOptions {
  /** Every variant and conversion, not only CI's subset. */
  readonly all?: boolean;
  /** Virtual size of the disks (default 1 GiB). */
  readonly size?: number;
}

/** Builds the corpus into `out` and returns the facts of every image. */
export async function buildCorpus(
  trees: CorpusTrees,
  out: string,
  options: BuildOptions = {},
): Promise<CorpusFacts[]> {
  const size = options.size ?? 1024 * MiB;
  await mkdir(out, { recursive: true });
  const facts: CorpusFacts[] = [];
  const good = await mbrExt4(trees, out, 'mbr-ext4-grub', size, async () => {}, {
    awsImportPasses: true,
    mustFind: [],
  });
  facts.push(good, ...(await conversions(good, options.all ?? false)));
  facts.push(
    await mbrExt4(
      trees,
      out,
      'mbr-ext4-no-initrd',
      size,
      async (root) => {
        for (const n of await readdir(join(root, 'boot')))
          if (n.startsWith('initrd.img-')) await rm(join(root, 'boot', n));
      },
      { awsImportPasses: false, mustFind: ['NO_INITRD'] },
    ),
  );
  facts.push(
    await mbrExt4(
      trees,
      out,
      'mbr-ext4-i386',
      size,
      async (root) => {
        for (const n of await readdir(join(root, 'boot'))) await rm(join(root, 'boot', n));
        await rm(join(root, 'lib/modules'), { recursive: true, force: true });
        await cp(join(trees.i386Kernel, 'boot'), join(root, 'boot'), { recursive: true });
        await cp(join(trees.i386Kernel, 'lib/modules'), join(root, 'lib/modules'), {
          recursive: true,
        });
      },
      { awsImportPasses: false, mustFind: ['OS_ARCH_32BIT'], arch: 'i386' },
    ),
  );
  facts.push(
    await mbrExt4(
      trees,
      out,
      'mbr-ext4-no-os-files',
      size,
      async (root) => {
        for (const f of [
          'etc/os-release',
          'usr/lib/os-release',
          'etc/debian_version',
          'etc/lsb-release',
          'etc/issue',
          'etc/issue.net',
        ])
          await rm(join(root, f), { force: true });
      },
      { awsImportPasses: false, mustFind: ['OS_UNKNOWN'], os: null },
    ),
  );
  facts.push(await partitionless(trees, out, size));
  facts.push(await emptyPartitions(out, size));
  facts.push(await zeros(out, size));
  if (options.all) {
    facts.push(await gptXfs(trees, out, size));
    facts.push(
      await mbrExt4(trees, out, 'mbr-ext4-extlinux', size, async () => {}, {
        awsImportPasses: false,
        mustFind: ['BOOTLOADER_UNSUPPORTED'],
        loader: 'extlinux',
      }),
    );
    // The whole corpus: every other image in every format too.
    for (const f of facts.filter((x) => x.format === 'raw' && x !== good)) {
      facts.push(...(await conversions(f, true)));
    }
  }
  await writeFile(join(out, 'corpus.json'), `${JSON.stringify(facts, null, 2)}\n`);
  return facts;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { all: { type: 'boolean' }, size: { type: 'string' } },
  });
  const outDir = positionals[0];
  if (outDir === undefined) {
    process.stderr.write('usage: inspect-corpus OUTDIR [--all] [--size 1G]\n');
    process.exit(2);
  }
  const found = corpusTrees();
  if ('missing' in found) {
    process.stderr.write(`inspect-corpus: ${found.missing}\n`);
    process.exit(1);
  }
  const m = /^(\d+)([MG])$/.exec(values.size ?? '1G');
  if (m === null) throw new Error('--size takes e.g. 512M or 2G');
  const size = Number(m[1]) * (m[2] === 'G' ? 1024 : 1) * MiB;
  const facts = await buildCorpus(found.trees, outDir, { all: values.all === true, size });
  for (const f of facts) process.stdout.write(`${f.name}\t${f.path}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
