/**
 * Buffers of one common size (an EBS block, 512 KiB), reused: a fresh
 * 512 KiB buffer per read is external memory to V8, and allocating it at
 * hundreds of MB/s makes V8 run a full mark-compact every few dozen reads.
 * A buffer is given back once its reader is done with it.
 */
export class BodyPool {
  readonly size: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];

  /** Buffers of `size` bytes; at most `max` are kept for reuse (memory: size x max). */
  constructor(size: number, max: number) {
    this.size = size;
    this.#max = Math.max(0, Math.floor(max));
  }

  /** A buffer of `size` bytes, reused or new (its bytes are not cleared). */
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives a buffer back; one of another size, or beyond the cap, is left to the GC. */
  give(buf: Buffer): void {
    if (buf.length === this.size && buf.byteOffset === 0 && this.#free.length < this.#max)
      this.#free.push(buf);
  }

  get idle(): number {
    return this.#free.length;
  }
}
