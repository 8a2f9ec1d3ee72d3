/** A range of stored bytes, e.g. `{ offset: 0, length: 4096 }`. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * Random-access bytes an image is stored in: a file today, an HTTP object or
 * an archive member later. Formats layer over it.
 */
export interface ByteSource {
  /** For messages: a path or URL. */
  readonly name: string;
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `offset`. Throws FERRY_IMAGE_TRUNCATED
   * when the range extends past `size`.
   */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Capability: fills `target` with `target.length` bytes at `offset`, with
   * no intermediate buffer (the converter reads windows in place with it).
   * Same errors as `read`.
   */
  readInto?(target: Buffer, offset: number, signal?: AbortSignal): Promise<void>;
  /**
   * Capability: the stored data ranges within [offset, offset+length), from
   * SEEK_DATA/SEEK_HOLE where the OS has them. Absent when unknown.
   */
  dataRanges?(offset: number, length: number): Promise<ByteRange[]>;
  close(): Promise<void>;
}

/** Fills `target` from `source` at `offset`: in place where the source can, else through a copy. */
export async function readSourceInto(
  source: ByteSource,
  target: Buffer,
  offset: number,
  signal?: AbortSignal,
): Promise<void> {
  if (source.readInto !== undefined) return source.readInto(target, offset, signal);
  (await source.read(offset, target.length, signal)).copy(target);
}
