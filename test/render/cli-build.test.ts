import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseSize } from '../../src/cli/commands/build.js';
import { runCli } from '../helpers/cli.js';
import { qemuCompare, withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);

async function tree(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'boot'), { recursive: true });
  await writeFile(join(dir, 'etc/hostname'), 'cli\n');
  await writeFile(join(dir, 'boot/vmlinuz-6.1.0-9-amd64'), Buffer.alloc(70_000, 1));
  await writeFile(join(dir, 'boot/vmlinuz-6.1.0-10-amd64'), Buffer.alloc(80_000, 2));
  await writeFile(join(dir, 'boot/initrd.img-6.1.0-10-amd64'), Buffer.alloc(90_000, 3));
}

describe('ferry build', () => {
  it('renders fs and disk layouts with stable JSON, in any output format, and refuses bad usage with exit 2', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      const store = join(dir, 'store');
      assert.equal((await runCli(['image', 'add', 'cli/test', src, '--store', store])).code, 0);

      const fs = await runCli([
        'build',
        'cli/test',
        '--layout',
        'fs',
        '--out',
        join(dir, 'root.ext4'),
        '--store',
        store,
        '--output',
        'json',
      ]);
      assert.equal(fs.code, 0, fs.stderr);
      const r = JSON.parse(fs.stdout) as Record<string, unknown>;
      for (const k of [
        'layout',
        'out',
        'revision',
        'uuid',
        'bytes',
        'map',
        'dataChunks',
        'changedChunks',
        'totalChunks',
        'kernel',
        'initrd',
        'seconds',
      ])
        assert.ok(k in r, k);
      // The newest kernel (6.1.0-10 sorts after 6.1.0-9) and its initrd, written beside the image.
      assert.deepEqual(r.kernel, {
        path: join(dir, 'root.ext4-kernel'),
        version: '6.1.0-10-amd64',
      });
      assert.deepEqual(await readFile(join(dir, 'root.ext4-kernel')), Buffer.alloc(80_000, 2));
      assert.deepEqual(await readFile(join(dir, 'root.ext4-initrd')), Buffer.alloc(90_000, 3));
      await run('e2fsck', ['-fn', join(dir, 'root.ext4')]);

      // The same render as qcow2 holds the same virtual disk.
      const q = await runCli([
        'build',
        'cli/test',
        '--layout',
        'fs',
        '--out',
        join(dir, 'root.qcow2'),
        '--format',
        'qcow2',
        '--store',
        store,
      ]);
      assert.equal(q.code, 0, q.stderr);
      assert.equal(
        (await qemuCompare(join(dir, 'root.ext4'), join(dir, 'root.qcow2'), 'raw', 'qcow2'))
          .identical,
        true,
      );

      const disk = await runCli([
        'build',
        'cli/test',
        '--layout',
        'disk',
        '--out',
        join(dir, 'disk.img'),
        '--store',
        store,
        '--boot',
        'none',
        '--size',
        '300M',
        '--output',
        'json',
      ]);
      assert.equal(disk.code, 0, disk.stderr);
      const d = JSON.parse(disk.stdout) as {
        bytes: number;
        table: string;
        firmware: string;
        rootUuid: string;
        kernel: unknown;
      };
      assert.equal(d.bytes, 300 * 1024 * 1024);
      assert.equal((await stat(join(dir, 'disk.img'))).size, d.bytes);
      assert.equal(d.table, 'gpt');
      assert.equal(d.kernel, null);
      const { stdout } = await run('sgdisk', ['-v', join(dir, 'disk.img')]);
      assert.match(stdout, /No problems found/);

      // --margin sizes the free room of an auto-sized disk.
      const roomy = await runCli([
        'build',
        'cli/test',
        '--layout',
        'disk',
        '--out',
        join(dir, 'roomy.img'),
        '--store',
        store,
        '--boot',
        'none',
        '--margin',
        '400',
        '--output',
        'json',
      ]);
      assert.equal(roomy.code, 0, roomy.stderr);
      const auto = await runCli([
        'build',
        'cli/test',
        '--layout',
        'disk',
        '--out',
        join(dir, 'auto.img'),
        '--store',
        store,
        '--boot',
        'none',
        '--output',
        'json',
      ]);
      assert.equal(auto.code, 0, auto.stderr);
      assert.ok(
        (JSON.parse(roomy.stdout) as { bytes: number }).bytes >
          (JSON.parse(auto.stdout) as { bytes: number }).bytes,
        'a 400 % margin gives a bigger disk than the default 25 %',
      );

      // The disk's map alone as the base: the same revision comes out the same, no chunk differs.
      const again = await runCli([
        'build',
        'cli/test',
        '--layout',
        'disk',
        '--out',
        join(dir, 'disk2.img'),
        '--store',
        store,
        '--boot',
        'none',
        '--base',
        join(dir, 'disk.img.ferry-map.json'),
        '--output',
        'json',
      ]);
      assert.equal(again.code, 0, again.stderr);
      const a = JSON.parse(again.stdout) as { changedChunks: number; dataChunks: number };
      assert.equal(a.changedChunks, 0);
      assert.ok(a.dataChunks > 0);
      assert.ok(
        (await readFile(join(dir, 'disk2.img'))).equals(await readFile(join(dir, 'disk.img'))),
      );

      // Human output names what it did.
      const human = await runCli([
        'build',
        'cli/test',
        '--layout',
        'fs',
        '--out',
        join(dir, 'h.ext4'),
        '--store',
        store,
      ]);
      assert.equal(human.code, 0);
      assert.match(human.stdout, /ext4 [0-9a-f-]{36}/);

      for (const bad of [
        ['build', 'cli/test', '--layout', 'disk', '--out', join(dir, 'x'), '--margin', 'lots'],
        ['build', 'cli/test', '--layout', 'fs', '--out', join(dir, 'x'), '--margin', '10'],
        ['build', 'cli/test', '--out', join(dir, 'x')],
        ['build', 'cli/test', '--layout', 'fs'],
        ['build', 'cli/test', '--layout', 'fs', '--out', join(dir, 'x'), '--format', 'vdi'],
        [
          'build',
          'cli/test',
          '--layout',
          'disk',
          '--out',
          join(dir, 'x'),
          '--table',
          'mbr',
          '--firmware',
          'uefi',
        ],
        ['build', 'cli/test', '--layout', 'disk', '--out', join(dir, 'x'), '--size', 'lots'],
        [
          'build',
          'cli/test',
          '--layout',
          'disk',
          '--out',
          join(dir, 'x'),
          '--table',
          'mbr',
          '--boot',
          'extlinux',
          '--firmware',
          'both',
        ],
      ]) {
        const res = await runCli([...bad, '--store', store, '--output', 'json']);
        assert.equal(res.code, 2, `${bad.join(' ')}: ${res.stderr}`);
        assert.equal(
          (JSON.parse(res.stdout) as { error: { code: string } }).error.code,
          'FERRY_USAGE',
        );
      }
      const tooSmall = await runCli([
        'build',
        'cli/test',
        '--layout',
        'disk',
        '--out',
        join(dir, 'x'),
        '--size',
        '8M',
        '--boot',
        'none',
        '--store',
        store,
        '--output',
        'json',
      ]);
      assert.equal(tooSmall.code, 1);
      assert.equal(
        (JSON.parse(tooSmall.stdout) as { error: { code: string } }).error.code,
        'FERRY_RENDER_LIMIT',
      );
      const xfs = await runCli([
        'build',
        'cli/test',
        '--layout',
        'fs',
        '--fs',
        'xfs',
        '--base',
        join(dir, 'previous.img'),
        '--out',
        join(dir, 'x'),
        '--store',
        store,
        '--output',
        'json',
      ]);
      assert.equal(
        (JSON.parse(xfs.stdout) as { error: { code: string } }).error.code,
        'FERRY_RENDER_INPUT',
        'a base without its block map',
      );
      await assert.rejects(stat(join(dir, 'x')), { code: 'ENOENT' });
    });
  });

  it('parses sizes', () => {
    assert.equal(parseSize('8G'), 8 * 2 ** 30);
    assert.equal(parseSize('512MiB'), 512 * 2 ** 20);
    assert.equal(parseSize('4096'), 4096);
    assert.throws(() => parseSize('-1G'), { code: 'FERRY_USAGE' });
    assert.throws(() => parseSize('1.5.2G'), { code: 'FERRY_USAGE' });
  });
});
