import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Block tokens and page tokens: opaque base64 strings (the model's pattern
 * ^[A-Za-z0-9+/=]+$, at most 256 characters) that carry a small payload and
 * a truncated HMAC-SHA256 under the engine's secret, so a client cannot forge
 * or alter one, and the engine keeps no table of them.
 *
 *   block token: version 1, expiry (u32 seconds), MAC over snapshot, index, digest, expiry
 *   page token:  version 2, next index (u32), MAC over the listing and next index
 */
const MAC_BYTES = 16;

export class TokenSigner {
  private readonly secret: Buffer;

  constructor(secret: Buffer) {
    this.secret = secret;
  }

  private mac(parts: readonly (string | number)[]): Buffer {
    return createHmac('sha256', this.secret)
      .update(parts.join('\0'))
      .digest()
      .subarray(0, MAC_BYTES);
  }

  blockToken(snapshotId: string, index: number, digest: string, expiry: number): string {
    const b = Buffer.alloc(5 + MAC_BYTES);
    b[0] = 1;
    b.writeUInt32BE(expiry, 1);
    this.mac(['block', snapshotId, index, digest, expiry]).copy(b, 5);
    return b.toString('base64');
  }

  /** The token's expiry (seconds) if it is a genuine token for this block, else null. */
  checkBlockToken(token: string, snapshotId: string, index: number, digest: string): number | null {
    const b = decode(token, 5 + MAC_BYTES);
    if (b === null || b[0] !== 1) return null;
    const expiry = b.readUInt32BE(1);
    const want = this.mac(['block', snapshotId, index, digest, expiry]);
    return timingSafeEqual(b.subarray(5), want) ? expiry : null;
  }

  /** `scope` names the listing (operation and snapshot ids) the token continues. */
  pageToken(scope: string, next: number): string {
    const b = Buffer.alloc(5 + MAC_BYTES);
    b[0] = 2;
    b.writeUInt32BE(next, 1);
    this.mac(['page', scope, next]).copy(b, 5);
    return b.toString('base64');
  }

  /** The next block index if `token` is a genuine page token of `scope`, else null. */
  checkPageToken(token: string, scope: string): number | null {
    const b = decode(token, 5 + MAC_BYTES);
    if (b === null || b[0] !== 2) return null;
    const next = b.readUInt32BE(1);
    return timingSafeEqual(b.subarray(5), this.mac(['page', scope, next])) ? next : null;
  }
}

function decode(token: string, length: number): Buffer | null {
  if (token.length > 256 || !/^[A-Za-z0-9+/=]+$/.test(token)) return null;
  const b = Buffer.from(token, 'base64');
  return b.length === length && b.toString('base64') === token ? b : null;
}
