import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeHeader, encodeHeader, SLOT_HEADER } from '../../src/cloud/ebs/block-pack.js';

const DIGEST = 'ab'.repeat(32);

describe('block pack slot headers', () => {
  it('round-trip their digest and put time', () => {
    const h = encodeHeader(DIGEST, 1_780_000_000_123);
    assert.equal(h.length, SLOT_HEADER);
    assert.deepEqual(decodeHeader(h), { digest: DIGEST, time: 1_780_000_000_123 });
  });

  it('refuse a wrong magic, length or CRC, and a short header', () => {
    const good = encodeHeader(DIGEST, 5);
    for (const at of [0, 7, 8, 39, 40, 48, 52, 55]) {
      const bad = Buffer.from(good);
      bad.writeUInt8(bad.readUInt8(at) ^ 0x10, at);
      assert.equal(decodeHeader(bad), null, `byte ${at} flipped`);
    }
    assert.equal(decodeHeader(good.subarray(0, 55)), null);
    assert.equal(
      decodeHeader(Buffer.alloc(SLOT_HEADER)),
      null,
      'zeros: a voided or unwritten slot',
    );
  });

  it('never throw on random or mutated bytes, and accept only whole headers', () => {
    const good = encodeHeader(DIGEST, 42).subarray(0, 64);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)),
          fc
            .array(fc.tuple(fc.nat({ max: 63 }), fc.integer({ min: 0, max: 255 })), {
              minLength: 1,
              maxLength: 4,
            })
            .map((muts) => {
              const b = Buffer.from(good);
              for (const [at, v] of muts) b[at] = v;
              return b;
            }),
        ),
        (buf) => {
          const h = decodeHeader(buf);
          // Whatever decodes re-encodes to the same 56 bytes: no other input passes.
          if (h !== null) {
            assert.ok(encodeHeader(h.digest, h.time).subarray(0, 56).equals(buf.subarray(0, 56)));
          }
        },
      ),
      { numRuns: 5000, seed: 0x5eed },
    );
  });
});
