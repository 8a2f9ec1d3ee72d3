/**
 * A stream of ferry.yaml: where its revisions come from and how they are
 * rendered (the options `ferry build` takes).
 */
import { isAbsolute, resolve } from 'node:path';
import type { MapReader } from './schema-reader.js';

export type StreamLayout = 'fs' | 'disk';
export type StreamFs = 'ext4' | 'xfs';
export type StreamBoot = 'grub' | 'extlinux' | 'none';
export type StreamFirmware = 'bios' | 'uefi' | 'both';

export interface StreamConfig {
  readonly name: string;
  /** A directory or tarball (resolved against ferry.yaml's directory); absent: the store's revisions only. */
  readonly source?: string;
  /** Default disk. */
  readonly layout: StreamLayout;
  /** Default ext4. */
  readonly fs: StreamFs;
  /** Default grub. */
  readonly boot: StreamBoot;
  /** Absent: the render's default for the boot loader (both for GRUB, bios for EXTLINUX). */
  readonly firmware?: StreamFirmware;
  /** 'auto' (the default) or bytes. */
  readonly size: 'auto' | number;
}

/** Target and stream names: what a journal key, a tag value and a file name can all hold. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const STREAM_KEYS = ['source', 'layout', 'fs', 'boot', 'firmware', 'size'] as const;
const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i;
/** The largest EBS volume: 64 TiB. */
const MAX_SIZE = 64 * 2 ** 40;

function parseSize(map: MapReader): 'auto' | number {
  const e = map.get('size');
  if (e === undefined) return 'auto';
  const v = e.value;
  const name = map.nameOf('size');
  if (v.kind === 'scalar' && v.value === 'auto') return 'auto';
  let bytes: number | undefined;
  if (v.kind === 'scalar' && typeof v.value === 'number') bytes = v.value;
  else if (v.kind === 'scalar' && typeof v.value === 'string') {
    const m = SIZE.exec(v.value.trim());
    if (m !== null) {
      const unit = (m[2] ?? '').toUpperCase().replace(/I?B$/, '');
      const scale = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[unit] ?? 1;
      bytes = Math.floor(Number(m[1]) * scale);
    }
  }
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_SIZE)
    throw map.fail(v.line, `${name} must be auto or a size up to 64T (say 8G, 512M or bytes)`);
  return bytes;
}

/** Reads `streams.NAME` (the map's keys already known to be a name). */
export function parseStream(map: MapReader, name: string, baseDir: string): StreamConfig {
  const source = map.string('source', 'a directory or tarball path');
  const firmware = map.oneOf('firmware', ['bios', 'uefi', 'both'] as const);
  return {
    name,
    ...(source === undefined
      ? {}
      : { source: isAbsolute(source) ? source : resolve(baseDir, source) }),
    layout: map.oneOf('layout', ['fs', 'disk'] as const) ?? 'disk',
    fs: map.oneOf('fs', ['ext4', 'xfs'] as const) ?? 'ext4',
    boot: map.oneOf('boot', ['grub', 'extlinux', 'none'] as const) ?? 'grub',
    ...(firmware === undefined ? {} : { firmware }),
    size: parseSize(map),
  };
}
