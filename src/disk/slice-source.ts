import { FerryError } from '../errors/index.js';
import { type ByteRange, type ByteSource, readSourceInto } from './byte-source.js';

/** A byte range of another source seen as a source of its own (an OVA member, say). */
export class SliceSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly #parent: ByteSource;
  readonly #start: number;

  constructor(parent: ByteSource, start: number, size: number, name: string) {
    if (start < 0 || size < 0 || start + size > parent.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot open ${name}: it extends past the end of ${parent.name}`,
        {
          details: { start, size, parentSize: parent.size },
        },
      );
    }
    this.#parent = parent;
    this.#start = start;
    this.size = size;
    this.name = name;
  }

  /** Throws unless [offset, offset+length) lies inside the slice. */
  #check(offset: number, length: number): void {
    if (offset < 0 || offset + length > this.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot read ${this.name}: bytes ${offset}+${length} lie past its end (${this.size})`,
        { details: { offset, length, size: this.size } },
      );
    }
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    this.#check(offset, length);
    return this.#parent.read(this.#start + offset, length, signal);
  }

  async readInto(target: Buffer, offset: number, signal?: AbortSignal): Promise<void> {
    this.#check(offset, target.length);
    await readSourceInto(this.#parent, target, this.#start + offset, signal);
  }

  async dataRanges(offset: number, length: number): Promise<ByteRange[]> {
    const len = Math.min(length, this.size - offset);
    if (this.#parent.dataRanges === undefined) return [{ offset, length: len }];
    const ranges = await this.#parent.dataRanges(this.#start + offset, len);
    return ranges.map((r) => ({ offset: r.offset - this.#start, length: r.length }));
  }

  /** The parent owns the file; closing a slice does nothing. */
  async close(): Promise<void> {}
}

/** An in-memory source, for tests and small generated images. */
export class BufferSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly #buf: Buffer;

  constructor(buf: Buffer, name = 'buffer') {
    this.#buf = buf;
    this.size = buf.length;
    this.name = name;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new FerryError(
        'FERRY_IMAGE_TRUNCATED',
        `Cannot read ${this.name}: bytes ${offset}+${length} lie past its end (${this.size})`,
        {
          details: { offset, length, size: this.size },
        },
      );
    }
    return Buffer.from(this.#buf.subarray(offset, offset + length));
  }

  async close(): Promise<void> {}
}
