import type { FsTree } from '../fs/fs-tree.js';

/** GRUB and other bootloader configuration files, as AWS VM Import looks for them. */
export const GRUB_CONFIG_PATHS = [
  '/boot/grub/grub.cfg',
  '/boot/grub2/grub.cfg',
  '/boot/grub/menu.lst',
  '/boot/grub/grub.conf',
  '/etc/grub.conf',
] as const;

export const EXTLINUX_CONFIG_PATHS = [
  '/boot/extlinux/extlinux.conf',
  '/extlinux.conf',
  '/boot/extlinux.conf',
] as const;
export const SYSLINUX_CONFIG_PATHS = [
  '/boot/syslinux/syslinux.cfg',
  '/syslinux.cfg',
  '/boot/syslinux.cfg',
] as const;

export interface BootConfig {
  /** grub.cfg, menu.lst... files that exist (symlinks to the same file counted once). */
  readonly grubConfigs: string[];
  readonly grubVersion: 'grub2' | 'grub-legacy' | null;
  readonly extlinuxConfig: string | null;
  readonly syslinuxConfig: string | null;
  /** BootLoaderSpec entries (/boot/loader/entries/*.conf). */
  readonly blsEntries: string[];
  /** grub.cfg uses blscfg (entries live outside grub.cfg). */
  readonly grubUsesBls: boolean;
  /** A default entry can be found (saved_entry in grubenv, or a default in grub.cfg/BLS). */
  readonly blsDefault: string | null;
  /** The kernel command lines configured (grub linux lines, extlinux APPEND, BLS options). */
  readonly cmdlines: string[];
  /** A serial console is configured (console=ttyS*, GRUB terminal serial). */
  readonly serialConsole: boolean;
}

const MAX_CONFIG_BYTES = 1024 * 1024;

function cmdlinesOf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*(?:linux|linux16|linuxefi|kernel|APPEND|append|options)\s+(.*)$/);
    if (m !== null && out.length < 64) out.push(m[1]!.slice(0, 1024));
  }
  return out;
}

/** Reads bootloader configuration from a root (or /boot) filesystem. */
export async function readBootConfig(fs: FsTree, bootPrefix = ''): Promise<BootConfig> {
  const grubConfigs: string[] = [];
  const seen = new Set<string>();
  const cmdlines: string[] = [];
  let grubVersion: BootConfig['grubVersion'] = null;
  let grubUsesBls = false;
  let serial = false;
  for (const p of GRUB_CONFIG_PATHS) {
    const path = bootPrefix !== '' && p.startsWith('/boot/') ? p.slice('/boot'.length) : p;
    const real = await fs.realpath(path).catch(() => null);
    if (real === null || seen.has(real)) continue;
    const st = await fs.stat(real).catch(() => null);
    if (st?.kind !== 'file') continue;
    seen.add(real);
    grubConfigs.push(p);
    const text = (await fs.readText(real, MAX_CONFIG_BYTES).catch(() => null)) ?? '';
    if (p.endsWith('grub.cfg')) grubVersion = 'grub2';
    else grubVersion ??= 'grub-legacy';
    if (/^\s*blscfg\b/m.test(text) || /\bblscfg\b/.test(text)) grubUsesBls = true;
    if (/^\s*(terminal_output|terminal)\b.*\bserial\b/m.test(text) || /^\s*serial\b/m.test(text))
      serial = true;
    cmdlines.push(...cmdlinesOf(text));
  }
  const firstExisting = async (paths: readonly string[]): Promise<string | null> => {
    for (const p of paths) if ((await fs.stat(p).catch(() => null))?.kind === 'file') return p;
    return null;
  };
  const extlinuxConfig = await firstExisting(EXTLINUX_CONFIG_PATHS);
  const syslinuxConfig =
    extlinuxConfig === null ? await firstExisting(SYSLINUX_CONFIG_PATHS) : null;
  for (const c of [extlinuxConfig, syslinuxConfig]) {
    if (c !== null)
      cmdlines.push(
        ...cmdlinesOf((await fs.readText(c, MAX_CONFIG_BYTES).catch(() => null)) ?? ''),
      );
  }
  const entriesDir = bootPrefix !== '' ? '/loader/entries' : '/boot/loader/entries';
  const blsEntries = ((await fs.readDir(entriesDir, 256).catch(() => null)) ?? [])
    .map((e) => e.name)
    .filter((n) => n.endsWith('.conf'))
    .sort();
  for (const e of blsEntries.slice(0, 32)) {
    cmdlines.push(
      ...cmdlinesOf((await fs.readText(`${entriesDir}/${e}`, 64 * 1024).catch(() => null)) ?? ''),
    );
  }
  let blsDefault: string | null = null;
  const grubenv = await fs
    .readText(bootPrefix !== '' ? '/grub2/grubenv' : '/boot/grub2/grubenv', 64 * 1024)
    .catch(() => null);
  const grubenv1 =
    grubenv ??
    (await fs
      .readText(bootPrefix !== '' ? '/grub/grubenv' : '/boot/grub/grubenv', 64 * 1024)
      .catch(() => null));
  const saved = grubenv1?.match(/^saved_entry=(.+)$/m)?.[1]?.trim();
  if (saved !== undefined && saved !== '') blsDefault = saved.slice(0, 256);
  if (cmdlines.some((c) => /\bconsole=ttyS\d/.test(c))) serial = true;
  const defaultGrub = await fs.readText('/etc/default/grub', 64 * 1024).catch(() => null);
  if (defaultGrub !== null && /console=ttyS\d|GRUB_TERMINAL\S*=.*serial/.test(defaultGrub))
    serial = true;
  return {
    grubConfigs,
    grubVersion,
    extlinuxConfig,
    syslinuxConfig,
    blsEntries,
    grubUsesBls,
    blsDefault,
    cmdlines,
    serialConsole: serial,
  };
}
