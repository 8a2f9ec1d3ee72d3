import { FerryError } from '../errors/index.js';
import { ovaReader, ovaWriter } from './formats/ova/index.js';
import { qcow2Reader, qcow2Writer } from './formats/qcow2/index.js';
import { rawReader, rawWriter } from './formats/raw/index.js';
import { vdiReader } from './formats/vdi/index.js';
import { vhdReader, vhdWriter } from './formats/vhd/index.js';
import { vhdxReader, vhdxWriter } from './formats/vhdx/index.js';
import { vmdkReader, vmdkWriter } from './formats/vmdk/index.js';
import {
  FORMAT_NAMES,
  type FormatName,
  type FormatReader,
  type FormatWriter,
  WRITABLE_FORMATS,
  type WritableFormat,
} from './types.js';

/** Readers probed in this order; raw is the fallback and never probed. */
export const PROBED_READERS: readonly FormatReader[] = [
  qcow2Reader,
  vhdxReader,
  vdiReader,
  vmdkReader,
  ovaReader,
  vhdReader,
];

const READERS: Record<FormatName, FormatReader> = {
  raw: rawReader,
  qcow2: qcow2Reader,
  vmdk: vmdkReader,
  vhd: vhdReader,
  vhdx: vhdxReader,
  vdi: vdiReader,
  ova: ovaReader,
};

const WRITERS: Record<WritableFormat, FormatWriter> = {
  raw: rawWriter,
  qcow2: qcow2Writer,
  vmdk: vmdkWriter,
  vhd: vhdWriter,
  vhdx: vhdxWriter,
  ova: ovaWriter,
};

export function isFormatName(name: string): name is FormatName {
  return (FORMAT_NAMES as readonly string[]).includes(name);
}

export function readerFor(name: string): FormatReader {
  if (!isFormatName(name)) {
    throw new FerryError(
      'FERRY_FORMAT_UNKNOWN',
      `Cannot read format "${name}": ferry knows ${FORMAT_NAMES.join(', ')}`,
      {
        details: { format: name },
      },
    );
  }
  return READERS[name];
}

export function writerFor(name: string): FormatWriter {
  if (!(WRITABLE_FORMATS as readonly string[]).includes(name)) {
    throw new FerryError(
      'FERRY_FORMAT_UNKNOWN',
      `Cannot write format "${name}": ferry writes ${WRITABLE_FORMATS.join(', ')}`,
      {
        details: { format: name },
      },
    );
  }
  return WRITERS[name as WritableFormat];
}
