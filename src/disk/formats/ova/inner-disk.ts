import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { PROBE_HEAD_BYTES } from '../../limits.js';
import type { DiskImage, FormatReader, OpenOptions } from '../../types.js';
import { qcow2Reader } from '../qcow2/index.js';
import { rawReader } from '../raw/index.js';
import { vdiReader } from '../vdi/index.js';
import { vhdReader } from '../vhd/index.js';
import { vhdxReader } from '../vhdx/index.js';
import { vmdkReader } from '../vmdk/index.js';
import { probeOva } from './probe.js';

/** Formats an OVA disk member may hold (never another OVA), probed in registry order. */
const INNER_READERS: readonly FormatReader[] = [
  qcow2Reader,
  vhdxReader,
  vdiReader,
  vmdkReader,
  vhdReader,
];

/** The format an OVF ovf:format URI names, when it names one ferry knows. */
export function declaredFormat(uri: string): string | null {
  const u = uri.toLowerCase();
  if (u.includes('vmdk')) return 'vmdk';
  if (u.includes('qcow')) return 'qcow2';
  if (u.includes('vhdx')) return 'vhdx';
  if (u.includes('vhd')) return 'vhd';
  if (u.includes('vdi')) return 'vdi';
  return null;
}

/**
 * Opens the disk member by its magic bytes, like openImageSource but with no
 * registry (so no import cycle), refusing a nested OVA, an ambiguous match,
 * and a member whose bytes disagree with the format the OVF declares.
 */
export async function openInnerDisk(
  member: ByteSource,
  ovfFormat: string,
  options: OpenOptions,
): Promise<DiskImage> {
  const { signal } = options;
  const head = await member.read(0, Math.min(member.size, PROBE_HEAD_BYTES), signal);
  const tailLen = Math.min(member.size, 512);
  const tail = await member.read(member.size - tailLen, tailLen, signal);
  if (probeOva(head)) {
    throw new FerryError(
      'FERRY_FORMAT_UNSUPPORTED',
      `Cannot open ${member.name}: the disk of an OVA is itself an OVA`,
      { details: { member: member.name } },
    );
  }
  const matches = INNER_READERS.filter((r) => r.probe(head, tail, member.size));
  if (matches.length > 1) {
    throw new FerryError(
      'FERRY_FORMAT_MISMATCH',
      `Cannot open ${member.name}: its bytes match several formats (${matches.map((r) => r.name).join(', ')})`,
      { details: { matches: matches.map((r) => r.name).join(',') } },
    );
  }
  const reader = matches[0] ?? rawReader;
  const declared = declaredFormat(ovfFormat);
  if (declared !== null && declared !== reader.name) {
    throw new FerryError(
      'FERRY_FORMAT_MISMATCH',
      `Cannot open ${member.name}: the OVF says ${declared}, its bytes say ${reader.name}`,
      { details: { declared, detected: reader.name } },
    );
  }
  // The disk is read from the archive alone: no sibling files, never flat extents.
  return reader.open(member, signal === undefined ? {} : { signal });
}
