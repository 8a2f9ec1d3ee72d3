import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import { SliceSource } from '../../slice-source.js';
import type {
  DiskImage,
  Extent,
  FormatDetails,
  FormatReader,
  ImageWarning,
  OpenOptions,
} from '../../types.js';
import { STREAM_OPTIMIZED_URI } from './constants.js';
import { openInnerDisk } from './inner-disk.js';
import { MAX_MANIFEST_BYTES, parseManifest, verifyManifest } from './manifest.js';
import { printable } from './member-name.js';
import type { OvfDescriptor, OvfDisk, OvfFile } from './ovf-parse.js';
import { probeOva } from './probe.js';
import { type TarMember, walkTar } from './tar-walk.js';

export type ManifestState = 'verified' | 'absent' | 'skipped';

interface OvaParts {
  readonly ovf: OvfDescriptor;
  readonly members: readonly TarMember[];
  readonly manifest: ManifestState;
  readonly disk: { readonly file: OvfFile; readonly disk: OvfDisk };
}

/** The first disk of an OVA, read through the format of its member. */
export class OvaImage implements DiskImage {
  readonly format = 'ova' as const;
  readonly virtualSize: number;
  readonly source: ByteSource;
  readonly warnings: readonly ImageWarning[];
  readonly #inner: DiskImage;
  readonly #parts: OvaParts;

  constructor(
    source: ByteSource,
    inner: DiskImage,
    parts: OvaParts,
    warnings: readonly ImageWarning[],
  ) {
    this.source = source;
    this.#inner = inner;
    this.#parts = parts;
    this.virtualSize = inner.virtualSize;
    this.warnings = warnings;
  }

  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    return this.#inner.read(offset, length, signal);
  }

  extents(signal?: AbortSignal): AsyncIterable<Extent> {
    return this.#inner.extents(signal);
  }

  details(): FormatDetails {
    const { ovf, members, manifest, disk } = this.#parts;
    const sizeOf = new Map(members.map((m) => [m.name, m.size]));
    const files = new Map(ovf.files.map((f) => [f.id, f]));
    const sys = ovf.system;
    return {
      ovf: {
        name: sys?.name ?? '',
        os: sys?.os ?? null,
        cpus: sys?.cpus ?? null,
        memoryMiB: sys?.memoryMiB ?? null,
        nics: sys?.nics ?? [],
        controllers: sys?.controllers ?? [],
        networks: ovf.networks,
        virtualSystems: ovf.virtualSystems,
      },
      disks: ovf.disks.map((d) => {
        const f = d.fileRef === null ? undefined : files.get(d.fileRef);
        return {
          href: f === undefined ? null : printable(f.href),
          format: d.format,
          capacity: d.capacity,
          size: f === undefined ? null : (sizeOf.get(f.href) ?? null),
        };
      }),
      disk: {
        href: printable(disk.file.href),
        format: this.#inner.format,
        details: this.#inner.details(),
      },
      manifest,
      members: members.map((m) => ({ name: printable(m.name), size: m.size })),
    };
  }

  async close(): Promise<void> {
    try {
      await this.#inner.close();
    } finally {
      await this.source.close();
    }
  }
}

function badOvf(reason: string, details: Record<string, string | number> = {}): FerryError {
  return new FerryError('FERRY_OVA_BAD_OVF', `Cannot open the OVA: ${reason}`, { details });
}

/** Refuses a metadata member larger than `cap` before reading it. */
function capMember(member: TarMember, cap: number, what: string): void {
  if (member.size > cap) {
    throw new FerryError(
      'FERRY_IMAGE_LIMIT',
      `Cannot open the OVA: its ${what} has ${member.size} bytes, more than the ${cap}-byte cap`,
      { details: { member: printable(member.name), size: member.size, cap } },
    );
  }
}

const isOvf = (name: string) => /\.ovf$/i.test(name);
const isManifest = (name: string) => /\.mf$/i.test(name);
/** Chunked members are named "<file>.000000000", "<file>.000000001"... (DSP0243). */
const isChunk = (name: string) => /\.[0-9]{3,}$/.test(name);

/** Applies the DSP0243 layout rules ferry enforces to the member list. */
function checkLayout(members: readonly TarMember[]): { ovf: TarMember; mf: TarMember | undefined } {
  const first = members[0];
  if (first === undefined) {
    throw new FerryError('FERRY_OVA_BAD_ARCHIVE', 'Cannot open the OVA: the archive is empty');
  }
  if (!isOvf(first.name)) {
    throw new FerryError(
      'FERRY_OVA_OVF_NOT_FIRST',
      `Cannot open the OVA: its first member is "${printable(first.name)}", not the .ovf descriptor`,
      { details: { first: printable(first.name) }, hint: 'AWS rejects such an OVA too' },
    );
  }
  const ovfs = members.filter((m) => isOvf(m.name));
  if (ovfs.length > 1) {
    throw badOvf(`it holds ${ovfs.length} .ovf descriptors; an OVA has exactly one`, {
      count: ovfs.length,
    });
  }
  const chunk = members.find((m) => isChunk(m.name));
  if (chunk !== undefined) {
    throw new FerryError(
      'FERRY_OVA_CHUNKED_DISK',
      `Cannot open the OVA: "${printable(chunk.name)}" is a chunk of a split file`,
      {
        details: { member: printable(chunk.name) },
        hint: 'AWS does not accept chunked OVAs either',
      },
    );
  }
  const mfs = members.filter((m) => isManifest(m.name));
  if (mfs.length > 1) {
    throw new FerryError('FERRY_OVA_BAD_ARCHIVE', 'Cannot open the OVA: it has two manifests', {
      details: { count: mfs.length },
    });
  }
  return { ovf: first, mf: mfs[0] };
}

/** Checks the References against the members and picks the first disk backed by a file. */
function checkReferences(
  ovf: OvfDescriptor,
  byName: ReadonlyMap<string, TarMember>,
): { file: OvfFile; disk: OvfDisk } {
  const ids = new Map<string, OvfFile>();
  for (const f of ovf.files) {
    if (ids.has(f.id)) throw badOvf(`two References share the id "${printable(f.id)}"`);
    ids.set(f.id, f);
    if (f.chunked) {
      throw new FerryError(
        'FERRY_OVA_CHUNKED_DISK',
        `Cannot open the OVA: the file "${printable(f.href)}" is stored in chunks (ovf:chunkSize)`,
        { details: { href: printable(f.href) } },
      );
    }
    if (/^[a-z][a-z0-9+.-]*:/i.test(f.href) || f.href.startsWith('/')) {
      throw badOvf(
        `the OVF references "${printable(f.href)}", outside the OVA; ferry never follows it`,
        {
          href: printable(f.href),
        },
      );
    }
    const member = byName.get(f.href);
    if (member === undefined) {
      throw badOvf(`the OVF references "${printable(f.href)}", which is not a member of the OVA`, {
        href: printable(f.href),
      });
    }
    if (f.size !== null && f.size !== member.size) {
      throw badOvf(
        `the OVF says "${printable(f.href)}" has ${f.size} bytes, the member has ${member.size}`,
        { href: printable(f.href), declared: f.size, actual: member.size },
      );
    }
  }
  for (const disk of ovf.disks) {
    if (disk.fileRef === null) continue;
    const file = ids.get(disk.fileRef);
    if (file === undefined) {
      throw badOvf(
        `the disk "${disk.diskId}" refers to the unknown file id "${printable(disk.fileRef)}"`,
      );
    }
    if (file.compression !== '') {
      throw new FerryError(
        'FERRY_FORMAT_UNSUPPORTED',
        `Cannot open the OVA: its disk "${printable(file.href)}" is ${printable(file.compression)}-compressed`,
        { details: { href: printable(file.href), compression: printable(file.compression) } },
      );
    }
    return { file, disk };
  }
  throw badOvf('the OVF describes no disk backed by a file in the OVA');
}

/**
 * Opens an OVA: walks the tar headers, enforces the member rules, parses the
 * OVF, checks its References, verifies the manifest (unless
 * options.verifyManifest is false), then opens the first disk.
 */
export async function openOva(source: ByteSource, options: OpenOptions): Promise<OvaImage> {
  const { signal } = options;
  const warnings: ImageWarning[] = [];
  const listing = await walkTar(source, signal);
  const members = listing.members;
  if (!listing.endMarker) {
    warnings.push({
      code: 'OVA_NO_END_MARKER',
      message: 'the archive ends without the two zero blocks that close a tar file',
    });
  }
  const { ovf: ovfMember, mf } = checkLayout(members);
  const byName = new Map(members.map((m) => [m.name, m]));
  capMember(ovfMember, LIMITS.maxOvfBytes, 'OVF descriptor');
  // The XML parser loads only when an OVA is opened: every other command starts faster without it.
  const { parseOvf } = await import('./ovf-parse.js');
  const ovf = parseOvf(await source.read(ovfMember.offset, ovfMember.size, signal));
  const { file, disk } = checkReferences(ovf, byName);

  let manifest: ManifestState = 'absent';
  if (mf !== undefined && options.verifyManifest === false) {
    manifest = 'skipped';
  } else if (mf !== undefined) {
    capMember(mf, MAX_MANIFEST_BYTES, 'manifest');
    const entries = parseManifest(await source.read(mf.offset, mf.size, signal));
    const verified = await verifyManifest(source, entries, byName, mf.name, signal);
    manifest = 'verified';
    const unlisted = members.filter(
      (m) => !verified.has(m.name) && !isManifest(m.name) && !/\.cert$/i.test(m.name),
    );
    if (unlisted.length > 0) {
      warnings.push({
        code: 'OVA_UNLISTED_MEMBER',
        message: `the manifest does not list ${unlisted.map((m) => `"${printable(m.name)}"`).join(', ')}`,
      });
    }
  }

  const member = byName.get(file.href)!;
  if (isOvf(member.name) || isManifest(member.name)) {
    throw badOvf(`the disk "${disk.diskId}" refers to the descriptor or manifest`);
  }
  const slice = new SliceSource(
    source,
    member.offset,
    member.size,
    `${source.name}:${printable(member.name)}`,
  );
  const inner = await openInnerDisk(slice, disk.format, options);
  try {
    if (disk.format !== STREAM_OPTIMIZED_URI) {
      warnings.push({
        code: 'OVA_NOT_STREAM_OPTIMIZED',
        message: `the disk format is "${disk.format || 'unspecified'}"; AWS VM Import needs a streamOptimized VMDK`,
      });
    }
    if (disk.capacity !== null && disk.capacity !== inner.virtualSize) {
      warnings.push({
        code: 'OVA_CAPACITY_MISMATCH',
        message: `the OVF gives the disk ${disk.capacity} bytes, the disk itself has ${inner.virtualSize}`,
      });
    }
    const withFile = ovf.disks.filter((d) => d.fileRef !== null).length;
    if (withFile > 1) {
      warnings.push({
        code: 'OVA_MORE_DISKS',
        message: `the OVA has ${withFile} disks; ferry reads the first`,
      });
    }
    for (const w of inner.warnings) warnings.push(w);
    return new OvaImage(source, inner, { ovf, members, manifest, disk: { file, disk } }, warnings);
  } catch (error) {
    await inner.close();
    throw error;
  }
}

export const ovaReader: FormatReader = {
  name: 'ova',
  probe: (head) => probeOva(head),
  open: openOva,
};
