/**
 * inspect against real Debian images (debootstrap bookworm, the Debian cloud
 * kernel and a real initramfs, Debian's i386 kernel), built by
 * scripts/inspect-corpus.ts from the trees scripts/make-debian-root.sh caches.
 * Every assertion compares the report with how the image was built.
 * FERRY_CORPUS_ALL=1 builds and checks the whole corpus (GPT + ESP + XFS and
 * every format); by default the subset CI runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCorpus, type CorpusFacts, corpusTrees } from '../../scripts/inspect-corpus.js';
import { openImage } from '../../src/disk/index.js';
import { type InspectReport, inspectImage } from '../../src/inspect/index.js';

const found = corpusTrees();
const all = process.env.FERRY_CORPUS_ALL === '1';
const haveVirtInspector = spawnSync('sh', ['-c', 'command -v virt-inspector']).status === 0;

/** libguestfs's environment: the direct backend, and TCG unless the caller chose (nested /dev/kvm often fails). */
const GUESTFS_ENV = {
  ...process.env,
  LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND ?? 'direct',
  LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? 'force_tcg',
};

describe('inspect on real Debian images', {
  skip: 'missing' in found ? found.missing : false,
  timeout: 20 * 60 * 1000,
}, () => {
  let dir = '';
  let facts: CorpusFacts[] = [];
  before(async () => {
    if ('missing' in found) return;
    dir = await mkdtemp(join(tmpdir(), 'ferry-corpus-'));
    facts = await buildCorpus(found.trees, dir, { all });
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  async function report(f: CorpusFacts): Promise<InspectReport> {
    const image = await openImage(f.path);
    try {
      return await inspectImage(image, f.path);
    } finally {
      await image.close();
    }
  }

  it('finds, in every image, the partition table, filesystems, OS, kernels and bootloader it was built with', async () => {
    assert.ok(facts.length >= (all ? 14 : 9), `built ${facts.length} images`);
    for (const f of facts) {
      const r = await report(f);
      const at = `${f.name}: ${JSON.stringify(r.findings.map((x) => x.code))}`;
      assert.equal(r.format, f.format, at);
      assert.equal(r.partitionTable.type, f.partitionTable, at);
      assert.deepEqual(
        r.filesystems.map((x) => [x.partition, x.type, x.uuid]),
        f.filesystems.map((e) => [e[0], e[1], e[2]]),
        at,
      );
      if (f.os === null) {
        assert.ok(r.os === null || r.os.distro === null, at);
      } else {
        assert.equal(r.os?.type, 'linux', at);
        assert.equal(r.os?.distro, f.os.distro, at);
        assert.equal(r.os?.version, f.os.version, at);
      }
      if (f.rootPartition !== null || f.kernels.length > 0) {
        assert.equal(r.os?.root.partition, f.rootPartition, at);
      }
      assert.deepEqual(
        r.kernels.map((k) => [k.version, k.arch, k.initrd]),
        f.kernels.map((k) => [k.version, k.arch, k.initrd]),
        at,
      );
      assert.equal(r.bootloader.type, f.bootloader, at);
      assert.deepEqual([...r.bootloader.firmware].sort(), [...f.firmware].sort(), at);
      for (const code of f.mustFind) {
        assert.ok(
          r.findings.some((x) => x.code === code),
          `${at}: ${code} expected`,
        );
      }
      if (f.awsImportPasses) assert.equal(r.verdicts['aws-import'], 'pass', at);
      else assert.notEqual(r.verdicts['aws-import'], 'pass', at);
      // The speed and economy the issue asks for, on real images.
      assert.ok(r.seconds < 1, `${at}: ${r.seconds} s`);
      assert.ok(r.bytesRead < 64 * 1024 * 1024, `${at}: ${r.bytesRead} bytes read`);
    }
  });

  it('reads the Debian cloud kernel facts: nvme built in, virtio_blk and ena as modules', async () => {
    const good = facts.find((f) => f.name === 'mbr-ext4-grub');
    assert.ok(good !== undefined);
    const r = await report(good);
    const k = r.kernels[0];
    assert.ok(k !== undefined);
    // What Debian's config says: CONFIG_BLK_DEV_NVME=y, VIRTIO_BLK=m, ENA_ETHERNET=m.
    assert.equal(k.drivers.nvme, 'builtin');
    assert.equal(k.drivers.virtio_blk, 'module');
    assert.equal(k.drivers.ena, 'module');
    assert.deepEqual(
      r.fstab.map((e) => [e.mountPoint, e.resolved]),
      [['/', true]],
    );
    assert.equal(r.serialConsole, true);
  });

  it('says the same of a disk in every format it was converted to', async () => {
    const base = facts.find((f) => f.name === 'mbr-ext4-grub');
    assert.ok(base !== undefined);
    const strip = (r: InspectReport) => ({
      os: r.os,
      kernels: r.kernels,
      bootloader: r.bootloader,
      filesystems: r.filesystems,
      partitions: r.partitionTable,
    });
    const expected = strip(await report(base));
    const converted = facts.filter((f) => f.name.startsWith('mbr-ext4-grub.'));
    assert.ok(converted.length >= 2);
    for (const f of converted) assert.deepEqual(strip(await report(f)), expected, f.name);
  });

  it('agrees with libguestfs virt-inspector on OS, distro, version, root filesystem and kernel', {
    skip: haveVirtInspector ? false : 'virt-inspector (libguestfs-tools) not installed',
  }, async () => {
    const picked = facts.filter((f) =>
      ['mbr-ext4-grub', 'mbr-ext4-grub.qcow2', 'gpt-uefi-xfs'].includes(f.name),
    );
    assert.ok(picked.length >= 2);
    for (const f of picked) {
      const qemuFormat = f.format === 'vhd' ? 'vpc' : f.format;
      const vi = spawnSync(
        'virt-inspector',
        [`--format=${qemuFormat}`, '-a', f.path, '--no-icon'],
        {
          encoding: 'utf8',
          env: GUESTFS_ENV,
          maxBuffer: 64 * 1024 * 1024,
          timeout: 600_000,
        },
      );
      assert.equal(
        vi.status,
        0,
        `${f.name}: virt-inspector failed: ${vi.error?.message ?? ''} ${(vi.stderr ?? '').slice(-2000)}`,
      );
      const tag = (t: string) => new RegExp(`<${t}>([^<]*)</${t}>`).exec(vi.stdout)?.[1] ?? null;
      const r = await report(f);
      assert.equal(r.os?.type, tag('name'), f.name);
      assert.equal(r.os?.distro, tag('distro'), f.name);
      assert.equal(r.os?.version, `${tag('major_version')}.${tag('minor_version')}`, f.name);
      const rootUuid = r.filesystems.find((x) => x.partition === r.os?.root.partition)?.uuid;
      assert.ok(rootUuid !== undefined && vi.stdout.includes(`<uuid>${rootUuid}</uuid>`), f.name);
      // virt-inspector lists the kernel as its Debian package, linux-image-<version>.
      for (const k of r.kernels) {
        assert.ok(
          vi.stdout.includes(`<name>linux-image-${k.version}</name>`),
          `${f.name}: ${k.version}`,
        );
      }
    }
  });
});
