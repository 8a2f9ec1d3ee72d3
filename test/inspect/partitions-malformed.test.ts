import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { readPartitionTable } from '../../src/inspect/partitions/index.js';
import { bufferVolume, ReadCounter, volumeOf } from '../../src/inspect/volume.js';
import { partitionCases } from '../corpus/partitions.js';

/**
 * Each hostile partition table is refused with its code, or read with its
 * finding, quickly, reading little. Reading must never go outside the disk.
 */
describe('malformed partition tables', () => {
  for (const c of partitionCases) {
    it(c.name, async () => {
      const buf = c.build();
      const counter = new ReadCounter();
      const disk = volumeOf(
        { virtualSize: buf.length, read: async (o, l) => Buffer.from(buf.subarray(o, o + l)) },
        0,
        buf.length,
        counter,
      );
      const started = performance.now();
      if ('error' in c.expect) {
        const code = c.expect.error;
        await assert.rejects(readPartitionTable(disk), (e: unknown) => {
          assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
          assert.equal(e.code, code, e.message);
          assert.match(e.message, /^Cannot /);
          return true;
        });
      } else {
        const table = await readPartitionTable(disk);
        const codes = table.findings.map((f) => f.code);
        assert.ok(
          codes.includes(c.expect.finding),
          `expected ${c.expect.finding}, got ${codes.join(', ') || 'no finding'}`,
        );
        for (const p of table.partitions) {
          assert.ok(Number.isSafeInteger(p.start) && Number.isSafeInteger(p.size) && p.size > 0);
        }
      }
      assert.ok(performance.now() - started < 5000, 'took longer than 5 s');
      assert.ok(counter.bytes <= 4 * 1024 * 1024, `read ${counter.bytes} bytes`);
    });
  }

  it('reads each valid seed of the corpus cleanly', async () => {
    const { smallGpt } = await import('../corpus/partitions.js');
    for (const ss of [512, 4096]) {
      const t = await readPartitionTable(bufferVolume(smallGpt(ss)));
      assert.equal(t.type, 'gpt');
      assert.equal(t.sectorSize, ss);
      assert.deepEqual(t.findings, []);
      assert.deepEqual(
        t.partitions.map((p) => [p.index, p.typeName, p.name, p.bootable]),
        [
          [1, 'bios-boot', 'bios', false],
          [2, 'efi-system', 'EFI System', false],
          [3, 'linux-filesystem', 'root', true],
        ],
      );
    }
  });
});
