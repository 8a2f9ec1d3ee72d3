import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { crc32c } from '../../src/util/crc32c.js';

/** Bit-at-a-time reference implementation. */
function slowCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('matches the published check value and the RFC 3720 vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
    assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
    assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
  });

  it('agrees with a bitwise implementation at every length and alignment', () => {
    const data = randomBytes(300);
    for (let start = 0; start < 9; start++) {
      for (let len = 0; start + len <= data.length; len += 7) {
        const part = data.subarray(start, start + len);
        assert.equal(crc32c(part), slowCrc32c(part));
      }
    }
  });

  it('continues over concatenated input', () => {
    const a = randomBytes(1000);
    const b = randomBytes(4097);
    assert.equal(crc32c(b, crc32c(a)), crc32c(Buffer.concat([a, b])));
    assert.equal(crc32c(Buffer.alloc(0), crc32c(a)), crc32c(a));
  });

  it('is fast enough for 64 MiB in well under a second', () => {
    const big = randomBytes(64 * 1024 * 1024);
    const t = performance.now();
    const v = crc32c(big);
    const ms = performance.now() - t;
    assert.equal(typeof v, 'number');
    assert.ok(ms < 2000, `took ${ms} ms`);
  });
});
