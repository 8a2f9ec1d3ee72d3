import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { LIMITS } from '../../limits.js';
import type { DiskImage, FormatReader, ImageWarning, OpenOptions } from '../../types.js';
import { HEADER_SIZE, SECTOR } from './constants.js';
import {
  checkExtentFileName,
  DESCRIPTOR_SIGNATURE,
  type Descriptor,
  parseDescriptor,
} from './descriptor.js';
import { FlatVmdkImage } from './flat-image.js';
import { readFooter } from './footer.js';
import { GrainDirectory } from './grain-directory.js';
import { checkSparseHeader, decodeSparseHeader, gdEntries, hasSparseMagic } from './header.js';
import { SparseVmdkImage } from './sparse-image.js';

const SPARSE_TYPES = ['monolithicSparse', 'streamOptimized'];

/**
 * Says whether bytes look like VMDK: a hosted sparse header (KDMV), a
 * legacy COWD extent (refused on open), or a text descriptor, recognised as
 * qemu does (comment and blank lines, then "version=N").
 */
export function probeVmdk(head: Buffer): boolean {
  if (head.length >= 4) {
    const magic = head.toString('latin1', 0, 4);
    if (magic === 'KDMV' || magic === 'COWD') return true;
  }
  if (head.toString('latin1', 0, DESCRIPTOR_SIGNATURE.length) === DESCRIPTOR_SIGNATURE) return true;
  const text = head.toString('latin1', 0, Math.min(head.length, 4096));
  let p = 0;
  while (p < text.length) {
    const nl = text.indexOf('\n', p);
    const line = text.slice(p, nl < 0 ? text.length : nl).replace(/\r$/, '');
    if (line.startsWith('#') || /^ *$/.test(line)) {
      if (nl < 0) return false;
      p = nl + 1;
      continue;
    }
    return nl >= 0 && /^version=[123]$/.test(line);
  }
  return false;
}

function unsupportedType(name: string, reason: string, createType: string): FerryError {
  return new FerryError(
    'FERRY_VMDK_UNSUPPORTED_TYPE',
    `Cannot open vmdk image ${name}: ${reason}`,
    {
      details: { createType },
      hint: 'ferry reads monolithicSparse, streamOptimized and (with --allow-flat-extents) monolithicFlat VMDKs',
    },
  );
}

/** The embedded descriptor of a sparse extent must describe that one extent. */
function checkSparseDescriptor(d: Descriptor, name: string): void {
  if (!SPARSE_TYPES.includes(d.createType)) {
    throw unsupportedType(name, `createType "${d.createType}" is not supported`, d.createType);
  }
  if (d.extents.length !== 1) {
    throw unsupportedType(
      name,
      `the descriptor lists ${d.extents.length} extents, not one`,
      d.createType,
    );
  }
  const e = d.extents[0]!;
  if (e.type !== 'SPARSE' || e.access === 'NOACCESS') {
    throw unsupportedType(
      name,
      `the extent is ${e.access} ${e.type}, not one SPARSE extent`,
      d.createType,
    );
  }
  checkExtentFileName(e.file, name);
}

async function openSparse(source: ByteSource, options: OpenOptions): Promise<DiskImage> {
  const name = source.name;
  const { signal } = options;
  if (source.size < HEADER_SIZE) {
    throw new FerryError(
      'FERRY_IMAGE_TRUNCATED',
      `Cannot open vmdk image ${name}: the header is truncated`,
      {
        details: { size: source.size },
      },
    );
  }
  const first = decodeSparseHeader(await source.read(0, HEADER_SIZE, signal), name);
  checkSparseHeader(first, source.size, name);
  const gdAtEnd = first.gdOffset === null;
  const header = gdAtEnd ? await readFooter(source, first, signal) : first;
  if (gdAtEnd) checkSparseHeader(header, source.size, name);
  const descriptor = parseDescriptor(
    await source.read(header.descriptorOffset * SECTOR, header.descriptorSize * SECTOR, signal),
    name,
  );
  checkSparseDescriptor(descriptor, name);
  const warnings: ImageWarning[] = [];
  const extent = descriptor.extents[0]!;
  if (extent.sectors !== header.capacity) {
    warnings.push({
      code: 'VMDK_EXTENT_SIZE_MISMATCH',
      message: `the descriptor gives the extent ${extent.sectors} sectors, the header ${header.capacity}; ferry uses the header`,
    });
  }
  if (header.uncleanShutdown !== 0) {
    warnings.push({
      code: 'VMDK_UNCLEAN_SHUTDOWN',
      message: 'the disk was not closed cleanly; its contents may be inconsistent',
    });
  }
  const directory = await GrainDirectory.load(
    source,
    {
      gdOffset: header.gdOffset!,
      entries: gdEntries(header),
      numGTEsPerGT: header.numGTEsPerGT,
      firstFreeSector: header.descriptorOffset + header.descriptorSize,
    },
    signal,
  );
  return new SparseVmdkImage(source, { header, gdAtEnd, descriptor, directory, warnings });
}

async function openDescriptorFile(source: ByteSource, options: OpenOptions): Promise<DiskImage> {
  const name = source.name;
  if (source.size > LIMITS.maxVmdkDescriptorBytes) {
    throw new FerryError(
      'FERRY_VMDK_BAD_DESCRIPTOR',
      `Cannot open vmdk image ${name}: the descriptor file is over 1 MiB`,
      { details: { size: source.size } },
    );
  }
  const d = parseDescriptor(await source.read(0, source.size, options.signal), name);
  if (d.createType !== 'monolithicFlat') {
    throw unsupportedType(
      name,
      `a descriptor file of createType "${d.createType}" is not supported`,
      d.createType,
    );
  }
  if (d.extents.length !== 1) {
    throw unsupportedType(
      name,
      `the descriptor lists ${d.extents.length} extents, not one`,
      d.createType,
    );
  }
  const e = d.extents[0]!;
  if (e.type !== 'FLAT' || e.access === 'NOACCESS') {
    throw unsupportedType(
      name,
      `the extent is ${e.access} ${e.type}, not one FLAT extent`,
      d.createType,
    );
  }
  if (e.offset === null || e.sectors <= 0) {
    throw new FerryError(
      'FERRY_VMDK_BAD_DESCRIPTOR',
      `Cannot open vmdk image ${name}: the FLAT extent line needs a size and an offset`,
    );
  }
  if (e.sectors > LIMITS.maxVirtualSize / SECTOR) {
    throw new FerryError(
      'FERRY_IMAGE_TOO_LARGE',
      `Cannot open vmdk image ${name}: the extent is over 64 TiB`,
      {
        details: { sectors: e.sectors },
      },
    );
  }
  const file = checkExtentFileName(e.file, name);
  if (options.allowFlatExtents !== true) {
    throw new FerryError(
      'FERRY_VMDK_EXTENT_PATH',
      `Cannot open vmdk image ${name}: it keeps its data in the flat extent "${file}", and flat extents were not allowed`,
      {
        details: { extent: file },
        hint: 'Pass --allow-flat-extents to read the extent beside the descriptor',
      },
    );
  }
  if (options.openSibling === undefined) {
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      `Cannot open vmdk image ${name}: its flat extent "${file}" can only be opened beside a descriptor file`,
      { details: { extent: file } },
    );
  }
  const data = await options.openSibling(file);
  try {
    const need = (e.offset + e.sectors) * SECTOR;
    if (need > data.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot open vmdk image ${name}: the flat extent "${file}" is shorter than the descriptor says`,
        { details: { extent: file, need, size: data.size } },
      );
    }
    return new FlatVmdkImage(source, d, e, data);
  } catch (error) {
    await data.close();
    throw error;
  }
}

async function openVmdk(source: ByteSource, options: OpenOptions): Promise<DiskImage> {
  const head = await source.read(0, Math.min(source.size, 4), options.signal);
  if (hasSparseMagic(head)) return openSparse(source, options);
  if (head.toString('latin1') === 'COWD') {
    throw unsupportedType(
      source.name,
      'COWD (vmfsSparse, VMDK 3) extents are not supported',
      'vmfsSparse',
    );
  }
  return openDescriptorFile(source, options);
}

export const vmdkReader: FormatReader = {
  name: 'vmdk',
  probe: (head) => probeVmdk(head),
  open: openVmdk,
};
