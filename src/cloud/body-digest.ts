import { createHash } from 'node:crypto';

/**
 * A request body's SHA-256, computed on first use and kept. The server
 * hashes a body only when something needs it: a signed payload hash to
 * check, or a service that has no cheaper proof (EBS compares a block it
 * already stores with the bytes instead; see BlockStore.holds).
 */
export class BodyDigest {
  readonly #body: Buffer;
  #hex: string | undefined;

  constructor(body: Buffer) {
    this.#body = body;
  }

  /** Whether the hash was computed already (using it then costs nothing). */
  get computed(): boolean {
    return this.#hex !== undefined;
  }

  /** The SHA-256, 64 lower-case hex digits. */
  hex(): string {
    this.#hex ??= createHash('sha256').update(this.#body).digest('hex');
    return this.#hex;
  }
}
