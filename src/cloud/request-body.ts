import { createHash } from 'node:crypto';

/**
 * A request body with its SHA-256 computed on first use and kept. The
 * server hashes a body only when something needs it: a signed payload hash
 * to check, or a service with no cheaper proof. A body known to be a copy
 * of bytes whose hash is already known (an EBS block equal to one the store
 * holds; see BlockReceiver) carries that hash and is never hashed.
 */
export class RequestBody {
  readonly bytes: Buffer;
  #hex: string | undefined;

  constructor(bytes: Buffer, sha256Hex?: string) {
    this.bytes = bytes;
    this.#hex = sha256Hex;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Whether the SHA-256 is known already (using it then costs nothing). */
  get hashed(): boolean {
    return this.#hex !== undefined;
  }

  /** The SHA-256, 64 lower-case hex digits. */
  sha256Hex(): string {
    this.#hex ??= createHash('sha256').update(this.bytes).digest('hex');
    return this.#hex;
  }
}

/**
 * Takes a request body chunk by chunk as it arrives, in place of the
 * server's copy into one buffer: a service that can check a body against
 * bytes it already has compares each chunk and lets it go (no copy, and the
 * socket's chunks die young instead of living through the whole request).
 */
export interface BodyReceiver {
  /** The next chunk; it is not kept after the call returns. */
  write(chunk: Buffer): void;
  /** The body once every chunk was written. */
  end(): RequestBody;
  /** Called once, after the handler answered or the request failed: buffers go back. */
  dispose(): void;
}

/** What a service sees of a request before its body is read, to pick a receiver. */
export interface BodyHead {
  readonly method: string;
  /** The raw path (not decoded). */
  readonly rawPath: string;
  readonly header: (name: string) => string | undefined;
  /** Content-Length (the body is never longer). */
  readonly length: number;
}
