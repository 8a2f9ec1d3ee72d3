import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { FerryError } from '../../../errors/index.js';
import { throwIfAborted } from '../../file-source.js';
import { OutputFile } from '../../output-file.js';
import type { DiskWriter, FormatWriter, WriteResult, WriterOptions } from '../../types.js';
import { VmdkStreamWriter } from '../vmdk/stream-writer.js';
import { buildOvf, padOvf } from './ovf-build.js';
import { encodeTarHeader, TAR_BLOCK, tarPadding } from './tar-header.js';

/** Bytes reserved for the OVF member (the descriptor is about 4 KiB). */
export const OVF_MEMBER_BYTES = 16 * 1024;
/** Bytes read back per step when hashing the disk member. */
const HASH_CHUNK = 4 * 1024 * 1024;
/** Longest VM name kept (the disk member name must fit ustar's 100 bytes). */
const MAX_NAME = 64;

/** Writes the disk member from `base` onward; `finish` returns its length in bytes. */
export interface MemberDiskWriter {
  write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void>;
  finish(): Promise<number>;
}

export type MemberDiskWriterFactory = (
  out: OutputFile,
  base: number,
  virtualSize: number,
) => MemberDiskWriter;

/** The VM name for an output path: its base name without ".ova", reduced to [A-Za-z0-9._-]. */
export function vmNameFor(path: string): string {
  const stem = basename(path).replace(/\.ova$/i, '');
  const clean = stem
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[.-]+/, '')
    .slice(0, MAX_NAME);
  return clean === '' ? 'disk' : clean;
}

/**
 * Streams an OVA in one pass: ustar header + OVF (in a fixed reserved region),
 * ustar header + the VMDK (written by the disk writer in place), then the
 * manifest and the end-of-archive blocks. At finish the OVF and the VMDK's
 * header are patched with the VMDK size and the manifest gets SHA-256 digests
 * (the VMDK is read back once to hash it).
 */
export class OvaWriter implements DiskWriter {
  readonly format = 'ova' as const;
  readonly #out: OutputFile;
  readonly #disk: MemberDiskWriter;
  readonly #name: string;
  readonly #virtualSize: number;
  readonly #mtime = Math.floor(Date.now() / 1000);
  /** File offset of the VMDK data (after the OVF member and the VMDK's header). */
  static readonly diskBase = TAR_BLOCK + OVF_MEMBER_BYTES + TAR_BLOCK;

  constructor(
    out: OutputFile,
    name: string,
    virtualSize: number,
    factory: MemberDiskWriterFactory,
  ) {
    this.#out = out;
    this.#name = name;
    this.#virtualSize = virtualSize;
    this.#disk = factory(out, OvaWriter.diskBase, virtualSize);
  }

  get ovfName(): string {
    return `${this.#name}.ovf`;
  }

  get diskName(): string {
    return `${this.#name}-disk1.vmdk`;
  }

  get manifestName(): string {
    return `${this.#name}.mf`;
  }

  write(offset: number, data: Buffer, signal?: AbortSignal): Promise<void> {
    return this.#disk.write(offset, data, signal);
  }

  async #hashDisk(size: number, signal?: AbortSignal): Promise<string> {
    const hash = createHash('sha256');
    const base = OvaWriter.diskBase;
    const readAt = (at: number) => {
      const p = this.#out.read(base + at, Math.min(HASH_CHUNK, size - at));
      p.catch(() => {}); // awaited below
      return p;
    };
    let next = size > 0 ? readAt(0) : undefined;
    for (let at = 0; at < size; at += HASH_CHUNK) {
      throwIfAborted(signal);
      const buf = await next!;
      next = at + HASH_CHUNK < size ? readAt(at + HASH_CHUNK) : undefined;
      hash.update(buf);
    }
    return hash.digest('hex');
  }

  async finish(signal?: AbortSignal): Promise<WriteResult> {
    const diskSize = await this.#disk.finish();
    const capacity = Math.ceil(this.#virtualSize / 512) * 512;
    const diskEnd = OvaWriter.diskBase + diskSize;
    if (this.#out.end > diskEnd) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `Cannot finish the OVA: the disk writer wrote past the ${diskSize} bytes it reported`,
      );
    }
    const diskDigest = await this.#hashDisk(diskSize, signal);
    const ovf = padOvf(
      buildOvf({ name: this.#name, diskHref: this.diskName, diskFileSize: diskSize, capacity }),
      OVF_MEMBER_BYTES,
    );
    const ovfDigest = createHash('sha256').update(ovf).digest('hex');
    const mf = Buffer.from(
      `SHA256(${this.ovfName})= ${ovfDigest}\nSHA256(${this.diskName})= ${diskDigest}\n`,
      'utf8',
    );
    await this.#out.writev(
      [
        encodeTarHeader(this.ovfName, OVF_MEMBER_BYTES, this.#mtime),
        ovf,
        encodeTarHeader(this.diskName, diskSize, this.#mtime),
      ],
      0,
    );
    const tail = [
      Buffer.alloc(tarPadding(diskSize)),
      encodeTarHeader(this.manifestName, mf.length, this.#mtime),
      mf,
      Buffer.alloc(tarPadding(mf.length)),
      Buffer.alloc(2 * TAR_BLOCK),
    ];
    await this.#out.writev(tail, diskEnd);
    const fileSize = diskEnd + tail.reduce((s, b) => s + b.length, 0);
    await this.#out.truncate(fileSize);
    await this.#out.commit();
    return { fileSize, virtualSize: capacity };
  }

  abort(): Promise<void> {
    return this.#out.discard();
  }
}

/** Creates an OVA writer whose disk member is produced by `factory`. */
export async function createOvaWriter(
  path: string,
  options: WriterOptions,
  factory: MemberDiskWriterFactory,
): Promise<OvaWriter> {
  const out = await OutputFile.create(path, options);
  try {
    return new OvaWriter(out, vmNameFor(path), options.virtualSize, factory);
  } catch (error) {
    await out.discard();
    throw error;
  }
}

/**
 * Writes an OVA for AWS VM Import / VMware: `<name>.ovf`, then
 * `<name>-disk1.vmdk` (streamOptimized), then `<name>.mf` (SHA-256).
 */
export const ovaWriter: FormatWriter = {
  name: 'ova',
  create: (path: string, options: WriterOptions) =>
    createOvaWriter(path, options, (out, base, size) => {
      const disk = new VmdkStreamWriter(out, base, size, {
        extentName: `${vmNameFor(path)}-disk1.vmdk`,
      });
      return { write: (offset, data) => disk.write(offset, data), finish: () => disk.finish() };
    }),
};
