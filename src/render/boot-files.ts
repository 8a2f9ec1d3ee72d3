import type { Manifest, ManifestEntry } from '../store/index.js';

/** A kernel and its initrd as a revision holds them. */
export interface BootFiles {
  readonly version: string;
  readonly kernel: ManifestEntry;
  readonly initrd: ManifestEntry | null;
}

const KERNEL = /^boot\/(?:vmlinuz|vmlinux|bzImage)-(.+)$/;

/** Compares kernel versions by their numeric and text parts ("6.1.0-50" > "6.1.0-9"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/([0-9]+)/);
  const pb = b.split(/([0-9]+)/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    if (/^[0-9]+$/.test(x) && /^[0-9]+$/.test(y))
      return Number(x) - Number(y) || x.length - y.length;
    return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * The newest kernel under /boot (Debian's vmlinuz-VERSION, Fedora's
 * vmlinuz-VERSION.ARCH) and the initrd that goes with it (initrd.img-VERSION,
 * initramfs-VERSION.img, initrd-VERSION), or null when there is none.
 */
export function findBootFiles(m: Manifest): BootFiles | null {
  const byPath = new Map(m.entries.map((e) => [e.path, e]));
  let best: { version: string; kernel: ManifestEntry } | null = null;
  for (const e of m.entries) {
    const k = KERNEL.exec(e.path);
    if (k === null || e.type !== 'file' || e.size === 0) continue;
    const version = k[1]!;
    if (best === null || compareVersions(version, best.version) > 0) best = { version, kernel: e };
  }
  if (best === null) return null;
  const v = best.version;
  const initrd =
    [`boot/initrd.img-${v}`, `boot/initramfs-${v}.img`, `boot/initrd-${v}`, `boot/initrd-${v}.img`]
      .map((p) => byPath.get(p))
      .find((e) => e !== undefined && e.type === 'file' && e.size > 0) ?? null;
  return { ...best, initrd };
}
