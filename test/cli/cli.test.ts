import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, runCli } from '../helpers/cli.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { withTempDir } from '../helpers/qemu.js';

describe('ferry CLI', () => {
  it('is executable after a build, as npx ferry in a fresh checkout needs', async () => {
    assert.notEqual((await stat(CLI)).mode & 0o111, 0);
    // env -S passes V8 heap sizing to node (a larger first heap: the local cloud's
    // request rate otherwise runs a mark-compact every few dozen blocks).
    assert.match(
      await readFile(CLI, 'utf8'),
      /^#!\/usr\/bin\/env -S node --initial-heap-size=64\n/,
    );
    // Run through the kernel's shebang handling, as npx ferry runs it.
    const r = spawnSync(CLI, ['--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ferry \d+\.\d+\.\d+/);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(
      await readFile(new URL('../../../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), `ferry ${pkg.version}`);
    const j = await runCli(['--version', '--output', 'json']);
    assert.deepEqual(JSON.parse(j.stdout), { version: pkg.version });
  });

  it('--help lists the commands; each command has its own help', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['info', 'convert', 'compare', 'demo'])
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
    const c = await runCli(['convert', '--help']);
    assert.equal(c.code, 0);
    assert.match(c.stdout, /Usage: ferry convert/);
  });

  it('usage errors exit 2 with a coded message', async () => {
    for (const args of [
      [],
      ['nosuch'],
      ['info'],
      ['convert', 'a'],
      ['info', 'x', '--bogus'],
      ['info', 'x', '--output', 'yaml'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `ferry ${args.join(' ')}`);
    }
    const j = await runCli(['convert', 'a', 'b', '--to', 'floppy', '--output', 'json']);
    assert.equal(j.code, 2);
    assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'FERRY_USAGE');
  });

  it('failures exit 1 with the error code in JSON', async () => {
    const r = await runCli(['info', '/nonexistent/image.qcow2', '--output', 'json']);
    assert.equal(r.code, 1);
    assert.equal(
      (JSON.parse(r.stdout) as { error: { code: string } }).error.code,
      'FERRY_NOT_FOUND',
    );
    const h = await runCli(['info', '/nonexistent/image.qcow2']);
    assert.equal(h.code, 1);
    assert.match(h.stderr, /^ferry: Cannot open .*\[FERRY_NOT_FOUND\]/);
  });

  it('info --output json has the documented fields', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'd.img');
      await writeRawDisk(p, MIXED_SIZE, MIXED_REGIONS);
      const r = await runCli(['info', p, '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(info.format, 'raw');
      assert.equal(info.virtualSize, MIXED_SIZE);
      assert.equal(info.fileSize, MIXED_SIZE);
      assert.equal(typeof info.allocatedBytes, 'number');
      assert.ok((info.allocatedBytes as number) <= MIXED_SIZE);
      assert.ok(Array.isArray(info.warnings));
      assert.equal(typeof info.details, 'object');
    });
  });

  it('convert writes the output, prints no progress when not a TTY, and refuses to overwrite', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      const b = join(dir, 'b.raw');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      const r = await runCli(['convert', a, b, '--to', 'raw', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const out = JSON.parse(r.stdout) as { to: string; virtualSize: number };
      assert.equal(out.to, 'raw');
      assert.equal(out.virtualSize, MIXED_SIZE);
      assert.equal((await stat(b)).size, MIXED_SIZE);
      const again = await runCli(['convert', a, b, '--to', 'raw', '--output', 'json']);
      assert.equal(again.code, 1);
      assert.equal(
        (JSON.parse(again.stdout) as { error: { code: string } }).error.code,
        'FERRY_DESTINATION_EXISTS',
      );
      assert.equal((await runCli(['convert', a, b, '--to', 'raw', '--overwrite'])).code, 0);
      const buffered = await runCli(['convert', a, b, '--to', 'raw', '--overwrite', '--buffered']);
      assert.equal(buffered.code, 0, buffered.stderr);
      assert.ok((await readFile(b)).equals(await readFile(a)));
    });
  });

  it('compare exits 0 when identical and 1 with the offset when not', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      const b = join(dir, 'b.img');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      await writeRawDisk(b, MIXED_SIZE, MIXED_REGIONS);
      const same = await runCli(['compare', a, b, '--output', 'json']);
      assert.equal(same.code, 0);
      assert.deepEqual((JSON.parse(same.stdout) as { identical: boolean }).identical, true);
      const fh = await open(b, 'r+');
      await fh.write(Buffer.from([0xab]), 0, 1, 4 * 1024 * 1024 + 5);
      await fh.close();
      const diff = await runCli(['compare', a, b, '--output', 'json']);
      assert.equal(diff.code, 1);
      const j = JSON.parse(diff.stdout) as { identical: boolean; firstDifference: number };
      assert.equal(j.identical, false);
      assert.equal(j.firstDifference, 4 * 1024 * 1024);
      const human = await runCli(['compare', a, b]);
      assert.match(human.stdout, /Content mismatch at offset 4194304!/);
    });
  });
});
