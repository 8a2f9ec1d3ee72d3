import type { FsTree } from '../fs/fs-tree.js';
import { clean } from '../os/linux-release.js';
import { Hive, type HiveValue } from './hive.js';

export interface WindowsFacts {
  readonly productName: string | null;
  /** "10.0", "6.3"... */
  readonly version: string | null;
  readonly build: string | null;
  readonly edition: string | null;
  readonly displayVersion: string | null;
  readonly installationType: string | null;
  readonly arch: 'x86_64' | 'i386' | 'aarch64' | 'unknown';
  /** Where the system root is, e.g. /Windows. */
  readonly systemRoot: string;
  /** Storage and network drivers registered as services in the SYSTEM hive. */
  readonly drivers: Readonly<Record<string, boolean>>;
}

/** Driver services that decide where a Windows image boots. */
export const WINDOWS_DRIVERS = {
  virtio_blk: 'viostor',
  virtio_scsi: 'vioscsi',
  virtio_net: 'netkvm',
  nvme: 'stornvme',
  ena: 'ena',
  xen: 'xenvbd',
} as const;

async function openHive(fs: FsTree, path: string): Promise<Hive | null> {
  const st = await fs.stat(path).catch(() => null);
  if (st?.kind !== 'file') return null;
  const size = st.size;
  return Hive.open(async (offset, length) => {
    const b = await fs.readRange(path, offset, length);
    if (b === null || b.length !== length) throw new Error('short hive read');
    return b;
  }, size);
}

function str(v: HiveValue | undefined): string | null {
  return typeof v === 'string' ? clean(v) : null;
}

/** Identifies Windows on an NTFS filesystem from its SOFTWARE and SYSTEM hives; null when absent. */
export async function readWindows(fs: FsTree): Promise<WindowsFacts | null> {
  const systemRoot = '/Windows';
  if ((await fs.stat(`${systemRoot}/System32`).catch(() => null))?.kind !== 'dir') return null;
  const software = await openHive(fs, `${systemRoot}/System32/config/SOFTWARE`);
  if (software === null) return null;
  const cv =
    (await software.values('Microsoft\\Windows NT\\CurrentVersion')) ??
    new Map<string, HiveValue>();
  const major = cv.get('CurrentMajorVersionNumber');
  const minor = cv.get('CurrentMinorVersionNumber');
  const version =
    typeof major === 'number' && typeof minor === 'number'
      ? `${major}.${minor}`
      : str(cv.get('CurrentVersion'));
  const drivers: Record<string, boolean> = {};
  const system = await openHive(fs, `${systemRoot}/System32/config/SYSTEM`).catch(() => null);
  if (system !== null) {
    const select = await system.values('Select');
    const current = select?.get('Current');
    const set =
      typeof current === 'number' && current > 0 && current < 1000
        ? `ControlSet${String(current).padStart(3, '0')}`
        : 'ControlSet001';
    const services = new Set(
      ((await system.subkeys(`${set}\\Services`)) ?? []).map((s) => s.toLowerCase()),
    );
    for (const [name, service] of Object.entries(WINDOWS_DRIVERS))
      drivers[name] = services.has(service);
  }
  let arch: WindowsFacts['arch'] = 'unknown';
  if ((await fs.stat(`${systemRoot}/SysArm32`).catch(() => null))?.kind === 'dir') arch = 'aarch64';
  else if ((await fs.stat(`${systemRoot}/SysWOW64`).catch(() => null))?.kind === 'dir')
    arch = 'x86_64';
  else arch = 'i386';
  return {
    productName: str(cv.get('ProductName')),
    version,
    build: str(cv.get('CurrentBuildNumber')) ?? str(cv.get('CurrentBuild')),
    edition: str(cv.get('EditionID')),
    displayVersion: str(cv.get('DisplayVersion')),
    installationType: str(cv.get('InstallationType')),
    arch,
    systemRoot,
    drivers,
  };
}
