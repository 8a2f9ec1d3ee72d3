import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OutputFile } from '../../src/disk/output-file.js';
import { WriteQueue } from '../../src/disk/write-queue.js';
import { dataRuns } from '../../src/disk/zero.js';

/** An OutputFile stand-in that records calls and lets the test finish writes one by one. */
class FakeOut {
  readonly log: string[] = [];
  readonly waiting: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  running = 0;
  maxRunning = 0;
  syncs = 0;

  #op(name: string): Promise<void> {
    this.log.push(name);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({
        resolve: () => {
          this.running--;
          resolve();
        },
        reject: (e) => {
          this.running--;
          reject(e);
        },
      });
    });
  }

  write(data: Buffer, at: number): Promise<void> {
    return this.#op(`write ${at}+${data.length}`);
  }

  writev(bufs: Buffer[], at: number): Promise<void> {
    return this.#op(`writev ${at}+${bufs.reduce((s, b) => s + b.length, 0)}`);
  }

  datasync(): Promise<void> {
    this.syncs++;
    return Promise.resolve();
  }

  /** Whether startWriteback works here (sync_file_range), and how often it was asked. */
  writebackWorks = false;
  writebacks = 0;

  startWriteback(): Promise<boolean> {
    this.writebacks++;
    return Promise.resolve(this.writebackWorks);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('write queue', () => {
  it('runs writes one at a time, in order, and bounds how many wait', async () => {
    const out = new FakeOut();
    const q = new WriteQueue(out as unknown as OutputFile, { queued: 2, syncEvery: Infinity });
    await q.write(Buffer.alloc(10), 0);
    await q.write([Buffer.alloc(5), Buffer.alloc(5)], 10);
    let thirdReturned = false;
    const third = q.write(Buffer.alloc(1), 20).then(() => {
      thirdReturned = true;
    });
    await tick();
    assert.equal(thirdReturned, false, 'a third queued write must wait');
    assert.deepEqual(out.log, ['write 0+10']);
    out.waiting.shift()!.resolve();
    await third;
    await tick();
    assert.deepEqual(out.log, ['write 0+10', 'writev 10+10']);
    while (out.waiting.length > 0 || out.log.length < 3) {
      out.waiting.shift()?.resolve();
      await tick();
    }
    await q.drain();
    assert.deepEqual(out.log, ['write 0+10', 'writev 10+10', 'write 20+1']);
    assert.equal(out.maxRunning, 1);
  });

  it('reports the first failure, skips the writes queued after it and settles on abort', async () => {
    const out = new FakeOut();
    const q = new WriteQueue(out as unknown as OutputFile, { queued: 4, syncEvery: Infinity });
    await q.write(Buffer.alloc(1), 0);
    await q.write(Buffer.alloc(1), 1);
    out.waiting.shift()!.reject(new Error('disk full'));
    await tick();
    await assert.rejects(q.write(Buffer.alloc(1), 2), /disk full/);
    await q.settle();
    assert.deepEqual(out.log, ['write 0+1'], 'nothing is written after a failure');
    await assert.rejects(q.drain(), /disk full/);
  });

  it('falls back to a background fdatasync every syncEvery bytes where writeback cannot be started', async () => {
    const out = new FakeOut();
    const q = new WriteQueue(out as unknown as OutputFile, { queued: 64, syncEvery: 100 });
    for (let i = 0; i < 10; i++) {
      await q.write(Buffer.alloc(50), i * 50);
      await tick();
    }
    assert.ok(out.syncs >= 1 && out.syncs <= 5, `${out.syncs} syncs for 500 bytes`);
    assert.equal(out.writebacks, 1, 'an unsupported writeback is asked for once');
    while (out.waiting.length > 0 || out.log.length < 10) {
      out.waiting.shift()?.resolve();
      await tick();
    }
    await q.drain();
  });

  it('starts writeback every syncEvery bytes, without fdatasync, where it can', async () => {
    const out = new FakeOut();
    out.writebackWorks = true;
    const q = new WriteQueue(out as unknown as OutputFile, { queued: 64, syncEvery: 100 });
    for (let i = 0; i < 10; i++) {
      await q.write(Buffer.alloc(50), i * 50);
      await tick();
    }
    assert.ok(
      out.writebacks >= 2 && out.writebacks <= 5,
      `${out.writebacks} writebacks for 500 bytes`,
    );
    assert.equal(out.syncs, 0);
    while (out.waiting.length > 0 || out.log.length < 10) {
      out.waiting.shift()?.resolve();
      await tick();
    }
    await q.drain();
  });
});

describe('write queue barrier', () => {
  it('resolves once the writes queued before it finish, failed ones included', async () => {
    const out = new FakeOut();
    const q = new WriteQueue(out as unknown as OutputFile, { queued: 8, syncEvery: Infinity });
    await q.write(Buffer.alloc(1), 0);
    await q.write(Buffer.alloc(1), 1);
    let passed = false;
    const barrier = q.barrier().then(() => {
      passed = true;
    });
    await q.write(Buffer.alloc(1), 2);
    out.waiting.shift()!.resolve();
    await tick();
    assert.equal(passed, false, 'one of the two writes before it is still running');
    out.waiting.shift()!.reject(new Error('disk full'));
    await barrier;
    assert.equal(passed, true);
    await q.settle();
    await assert.rejects(q.drain(), /disk full/);
  });
});

describe('dataRuns', () => {
  it('finds the non-zero 4 KiB units and merges neighbours', () => {
    const b = Buffer.alloc(64 * 1024);
    assert.deepEqual(dataRuns(b), []);
    b[5000] = 1;
    b[9000] = 1;
    b[40000] = 1;
    b[b.length - 1] = 1;
    assert.deepEqual(dataRuns(b), [
      [4096, 12288],
      [36864, 40960],
      [61440, 65536],
    ]);
    const odd = Buffer.alloc(5000, 1);
    assert.deepEqual(dataRuns(odd), [[0, 5000]]);
  });
});
