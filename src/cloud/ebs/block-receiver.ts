import { BodyPool } from '../body-pool.js';
import { type BodyHead, type BodyReceiver, RequestBody } from '../request-body.js';
import { BLOCK_SIZE } from './limits.js';

const PUT_BLOCK = /^\/snapshots\/[^/]+\/blocks\/[^/]+\/?$/;
const BASE64_SHA256 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Blocks that are not copies of a stored one: 512 KiB buffers, reused (at most 32 MiB kept). */
const BODIES = new BodyPool(BLOCK_SIZE, 64);

/**
 * The receiver of PutSnapshotBlock bodies. Most puts of a multi-target
 * publish send a block the engine wrote moments ago for another placement:
 * when x-amz-Checksum names a block of which `copyOf` has the bytes, each
 * chunk is compared with them as it arrives and let go, and the body is
 * that copy, with its SHA-256 known. Any other block (no copy, or a chunk
 * that differs) is gathered in a reused buffer and checked by the engine.
 * `copyOf` must return bytes that are never modified afterwards.
 */
export function blockReceiver(
  copyOf: (digest: string) => Buffer | undefined,
): (head: BodyHead) => BodyReceiver | undefined {
  return (head) => {
    if (head.method !== 'PUT' || head.length !== BLOCK_SIZE || !PUT_BLOCK.test(head.rawPath))
      return undefined;
    const checksum = head.header('x-amz-checksum');
    const claimed =
      checksum !== undefined && BASE64_SHA256.test(checksum)
        ? Buffer.from(checksum, 'base64').toString('hex')
        : undefined;
    const bytes = claimed === undefined ? undefined : copyOf(claimed);
    return new BlockReceiver(
      claimed !== undefined && bytes?.length === BLOCK_SIZE
        ? { bytes, digest: claimed }
        : undefined,
    );
  };
}

class BlockReceiver implements BodyReceiver {
  /** The known block and its SHA-256, while every chunk so far equals its bytes. */
  #known: { readonly bytes: Buffer; readonly digest: string } | undefined;
  /** The bytes gathered, once the body is not (or not known to be) the copy. */
  #into: Buffer | undefined;
  #at = 0;

  constructor(known: { readonly bytes: Buffer; readonly digest: string } | undefined) {
    this.#known = known;
  }

  write(chunk: Buffer): void {
    const end = this.#at + chunk.length;
    if (end > BLOCK_SIZE) throw new RangeError('a block body is longer than a block');
    const known = this.#known;
    if (known !== undefined) {
      if (chunk.compare(known.bytes, this.#at, end) === 0) {
        this.#at = end;
        return;
      }
      // It differs: what matched so far is the copy's prefix.
      this.#into = BODIES.take();
      known.bytes.copy(this.#into, 0, 0, this.#at);
      this.#known = undefined;
    }
    this.#into ??= BODIES.take();
    chunk.copy(this.#into, this.#at);
    this.#at = end;
  }

  end(): RequestBody {
    const known = this.#known;
    if (known !== undefined) {
      return this.#at === BLOCK_SIZE
        ? new RequestBody(known.bytes, known.digest)
        : new RequestBody(known.bytes.subarray(0, this.#at));
    }
    return new RequestBody(this.#into?.subarray(0, this.#at) ?? Buffer.alloc(0));
  }

  dispose(): void {
    if (this.#into !== undefined) BODIES.give(this.#into);
    this.#into = undefined;
  }
}
