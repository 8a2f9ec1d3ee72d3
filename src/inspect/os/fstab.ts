import { clean } from './linux-release.js';

export type FstabSpecKind =
  | 'uuid'
  | 'label'
  | 'partuuid'
  | 'partlabel'
  | 'device'
  | 'lvm'
  | 'other';

export interface FstabEntry {
  readonly spec: string;
  readonly kind: FstabSpecKind;
  /** The UUID, label or device named by `spec`. */
  readonly value: string;
  readonly mountPoint: string;
  readonly type: string;
  readonly options: string;
  /** A kernel device name (/dev/sda1, /dev/xvda1, /dev/vda1, /dev/nvme0n1p1) that changes between hypervisors. */
  readonly deviceName: boolean;
}

const MAX_ENTRIES = 256;

function decodeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Parses /etc/fstab (bounded; comments and malformed lines skipped). */
export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  for (const raw of text.split('\n')) {
    if (out.length >= MAX_ENTRIES) break;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f.length < 3) continue;
    const spec = clean(decodeOctal(f[0]!), 512) ?? '';
    const mountPoint = clean(decodeOctal(f[1]!), 512) ?? '';
    const type = clean(f[2], 64) ?? '';
    const options = clean(f[3] ?? 'defaults', 512) ?? 'defaults';
    let kind: FstabSpecKind = 'other';
    let value = spec;
    const m = spec.match(/^(UUID|LABEL|PARTUUID|PARTLABEL)=(.*)$/i);
    if (m !== null) {
      kind = m[1]!.toLowerCase() as FstabSpecKind;
      value = m[2]!.replace(/^"(.*)"$/, '$1');
    } else if (spec.startsWith('/dev/disk/by-uuid/')) {
      kind = 'uuid';
      value = spec.slice('/dev/disk/by-uuid/'.length);
    } else if (spec.startsWith('/dev/disk/by-label/')) {
      kind = 'label';
      value = spec.slice('/dev/disk/by-label/'.length);
    } else if (spec.startsWith('/dev/disk/by-partuuid/')) {
      kind = 'partuuid';
      value = spec.slice('/dev/disk/by-partuuid/'.length);
    } else if (spec.startsWith('/dev/mapper/') || /^\/dev\/[^/]+\/[^/]+$/.test(spec)) {
      kind = 'lvm';
    } else if (spec.startsWith('/dev/')) {
      kind = 'device';
    }
    const deviceName = kind === 'device' && /^\/dev\/(sd|hd|xvd|vd|nvme)/.test(spec);
    out.push({ spec, kind, value, mountPoint, type, options, deviceName });
  }
  return out;
}

/** Filesystem types that are mounted from a block device (not proc, tmpfs, nfs...). */
export function isBlockFilesystem(type: string): boolean {
  return ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'ntfs', 'swap', 'jfs', 'auto'].includes(
    type,
  );
}
