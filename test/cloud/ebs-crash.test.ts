import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EbsEngine } from '../../src/cloud/ebs/index.js';
import { block, CTX } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

const CHILD = fileURLToPath(new URL('../helpers/ebs-crash-child.js', import.meta.url));

it('after kill -9 mid-upload, a restarted engine has every acknowledged block and no partial one', async () => {
  await withTempDir(async (dir) => {
    const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Set<number>();
    let snapshotId = '';
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      child.on('error', reject);
      child.on('exit', () => resolve());
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const [kind, value] = buf.slice(0, nl).split(' ');
          buf = buf.slice(nl + 1);
          if (kind === 'snap') snapshotId = value!;
          if (kind === 'ack') acked.add(Number(value));
          if (acked.size === 40) child.kill('SIGKILL');
        }
      });
    });
    assert.equal(child.signalCode, 'SIGKILL', 'the child was killed mid-upload');
    assert.ok(acked.size >= 40);

    const engine = await EbsEngine.open(dir);
    try {
      const info = await engine.getSnapshot(CTX, snapshotId);
      assert.equal(info?.status, 'pending');
      const written = info!.changedBlocks;
      assert.ok(written >= acked.size, `${written} blocks recorded, ${acked.size} acknowledged`);
      assert.ok(written < 2048, 'the upload was cut short');
      // The pack being written when the child died was checked block by block and sealed.
      const names = await readdir(join(dir, 'packs'));
      const packs = names.filter((n) => n.endsWith('.pack'));
      assert.ok(packs.length > 0);
      for (const p of packs) assert.ok(names.includes(p.replace('.pack', '.sealed')), p);
      await engine.completeSnapshot(CTX, { snapshotId, changedBlocksCount: written });
      const listed = await engine.listSnapshotBlocks(CTX, { snapshotId });
      const indexes = new Set(listed.blocks.map((b) => b.blockIndex));
      for (const i of acked) assert.ok(indexes.has(i), `acknowledged block ${i} survived`);
      for (const b of listed.blocks) {
        const r = await engine.getSnapshotBlock(CTX, { snapshotId, ...b });
        assert.ok(r.data.equals(block(b.blockIndex)), `block ${b.blockIndex} reads back whole`);
      }
    } finally {
      await engine.close();
    }
  });
});
