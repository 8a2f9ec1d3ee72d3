import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  collectExtents,
  compareImages,
  convertImage,
  type DiskImage,
  openImage,
} from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { manifestFor, STREAM_OPTIMIZED, testOvf, VDI_FORMAT_URI } from '../corpus/ova.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { qemuCheck, qemuCompare, qemuImg, withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

interface OvaSpec {
  /** Path of the disk file to pack. */
  readonly disk: string;
  /** Name of the disk member (may contain directories). */
  readonly diskName?: string;
  readonly format?: string;
  readonly tarFormat?: 'ustar' | 'pax' | 'gnu';
  readonly manifest?: 'SHA256' | 'SHA1' | null;
  /** Capacity and units written in the OVF (default: the disk's virtual size in bytes). */
  readonly capacity?: string;
  readonly units?: string;
}

/**
 * Packs a handwritten OVF, the disk and a manifest with GNU tar, in the
 * order DSP0243 requires (OVF first), and returns the OVA path.
 */
async function makeOva(dir: string, spec: OvaSpec): Promise<string> {
  const work = join(dir, 'pack');
  await mkdir(work, { recursive: true });
  const diskName = spec.diskName ?? 'disk1.vmdk';
  const disk = await readFile(spec.disk);
  await mkdir(dirname(join(work, diskName)), { recursive: true });
  await writeFile(join(work, diskName), disk);
  const info = JSON.parse(await qemuImg('info', '--output=json', spec.disk)) as {
    'virtual-size': number;
  };
  const ovf = Buffer.from(
    testOvf({
      files: [{ href: diskName, size: disk.length }],
      capacity: spec.capacity ?? String(info['virtual-size']),
      units: spec.units ?? 'byte',
      format: spec.format ?? STREAM_OPTIMIZED,
    }),
  );
  await writeFile(join(work, 'vm.ovf'), ovf);
  const names = ['vm.ovf', diskName];
  if (spec.manifest !== null) {
    await writeFile(
      join(work, 'vm.mf'),
      manifestFor(
        [
          ['vm.ovf', ovf],
          [diskName, disk],
        ],
        spec.manifest ?? 'SHA256',
      ),
    );
    names.push('vm.mf');
  }
  const ova = join(dir, 'vm.ova');
  await run('tar', [
    `--format=${spec.tarFormat ?? 'ustar'}`,
    '--owner=0',
    '--group=0',
    '-cf',
    ova,
    '-C',
    work,
    ...names,
  ]);
  return ova;
}

async function streamVmdkOf(dir: string, raw: string): Promise<string> {
  const vmdk = join(dir, 'src.vmdk');
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, vmdk);
  return vmdk;
}

async function withImage<T>(path: string, fn: (img: DiskImage) => Promise<T>): Promise<T> {
  const img = await openImage(path);
  try {
    return await fn(img);
  } finally {
    await img.close();
  }
}

async function assertIdentical(a: string, b: string): Promise<void> {
  await withImage(a, (ia) =>
    withImage(b, async (ib) => {
      const r = await compareImages(ia, ib);
      assert.equal(r.identical, true, JSON.stringify(r));
    }),
  );
}

/** A qemu json: filename reading the VMDK member of an OVA in place (offset and size from tar -tv). */
async function qemuMemberSpec(ova: string, member: string): Promise<string> {
  const buf = await readFile(ova);
  let pos = 0;
  while (pos + 512 <= buf.length) {
    const name = buf.toString('utf8', pos, pos + 100).replace(/\0.*$/s, '');
    const size = Number.parseInt(buf.toString('latin1', pos + 124, pos + 136), 8);
    if (name === member) {
      return `json:${JSON.stringify({
        driver: 'vmdk',
        file: { driver: 'raw', offset: pos + 512, size, file: { driver: 'file', filename: ova } },
      })}`;
    }
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${member}`);
}

describe('ova reader', () => {
  it('reads a GNU-tar OVA around a qemu-img streamOptimized VMDK, identical to the VMDK', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const vmdk = await streamVmdkOf(dir, raw);
      const ova = await makeOva(dir, { disk: vmdk });
      await assertIdentical(ova, vmdk);
      await withImage(ova, async (img) => {
        assert.equal(img.format, 'ova');
        assert.equal(img.virtualSize, MIXED_SIZE);
        assert.deepEqual(img.warnings, []);
        const d = img.details() as Record<string, unknown>;
        assert.equal(d.manifest, 'verified');
        assert.deepEqual(d.ovf, {
          name: 'test & vm',
          os: {
            id: '101',
            osType: 'debian11_64Guest',
            description: 'Debian GNU/Linux 11 (64-bit)',
          },
          cpus: 2,
          memoryMiB: 2048,
          nics: [{ type: 'VmxNet3', connection: 'bridged' }],
          controllers: [
            { kind: 'scsi', subtype: 'VirtualSCSI' },
            { kind: 'ide', subtype: '' },
          ],
          networks: ['bridged'],
          virtualSystems: 1,
        });
        const vmdkSize = (await stat(vmdk)).size;
        assert.deepEqual(d.disks, [
          { href: 'disk1.vmdk', format: STREAM_OPTIMIZED, capacity: MIXED_SIZE, size: vmdkSize },
        ]);
        assert.deepEqual(
          (d.members as Array<{ name: string }>).map((m) => m.name),
          ['vm.ovf', 'disk1.vmdk', 'vm.mf'],
        );
        const inner = d.disk as { format: string; details: Record<string, unknown> };
        assert.equal(inner.format, 'vmdk');
        assert.equal(inner.details.createType, 'streamOptimized');
        // The allocation map is the VMDK's own.
        const ext = await collectExtents(img.extents());
        assert.ok(ext.some((e) => e.kind === 'hole'));
      });
      // Converted out of the OVA, the disk is what qemu-img reads from the VMDK.
      const out = join(dir, 'out.raw');
      const r = await convertImage(ova, out, { to: 'raw' });
      assert.equal(r.from, 'ova');
      assert.equal((await qemuCompare(vmdk, out, 'vmdk', 'raw')).identical, true);
      assert.equal((await qemuCompare(raw, out, 'raw', 'raw')).identical, true);
    });
  });

  it('reads pax and GNU tar formats, SHA-1 manifests, nested member names', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, 3 * MiB, [{ offset: MiB, length: 200 * 1024, fill: 'random' }]);
      const vmdk = await streamVmdkOf(dir, raw);
      const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/disk1.vmdk`;
      for (const spec of [
        { tarFormat: 'pax', manifest: 'SHA1' },
        { tarFormat: 'gnu' },
        { tarFormat: 'pax', diskName: `${'x'.repeat(120)}.vmdk` },
        { tarFormat: 'ustar', diskName: long },
      ] as const) {
        const sub = join(dir, `${spec.tarFormat}-${'diskName' in spec ? spec.diskName.length : 0}`);
        await mkdir(sub);
        const ova = await makeOva(sub, { disk: vmdk, ...spec });
        await withImage(ova, async (img) => {
          assert.equal(img.details().manifest, 'verified', JSON.stringify(spec));
        });
        await assertIdentical(ova, vmdk);
      }
    });
  });

  it('reports an absent or skipped manifest and capacity mismatches', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, 2 * MiB, [{ offset: 0, length: 4096, fill: 'random' }]);
      const vmdk = await streamVmdkOf(dir, raw);
      const a = join(dir, 'a');
      await mkdir(a);
      const noMf = await makeOva(a, {
        disk: vmdk,
        manifest: null,
        capacity: '1',
        units: 'byte * 2^30',
      });
      await withImage(noMf, async (img) => {
        assert.equal(img.details().manifest, 'absent');
        assert.deepEqual(
          img.warnings.map((w) => w.code),
          ['OVA_CAPACITY_MISMATCH'],
        );
      });
      const b = join(dir, 'b');
      await mkdir(b);
      const ova = await makeOva(b, { disk: vmdk, capacity: '2', units: 'byte * 2^20' });
      // Tamper with one digit of the manifest: refused, unless verification is off.
      const buf = await readFile(ova);
      const at = buf.indexOf('SHA256(disk1.vmdk)= ') + 'SHA256(disk1.vmdk)= '.length;
      buf[at] = buf[at] === 0x30 ? 0x31 : 0x30;
      await writeFile(ova, buf);
      await assert.rejects(openImage(ova), (e) => isFerryError(e, 'FERRY_OVA_MANIFEST_MISMATCH'));
      const img = await openImage(ova, { verifyManifest: false });
      try {
        assert.equal(img.details().manifest, 'skipped');
        assert.deepEqual(img.warnings, []);
      } finally {
        await img.close();
      }
    });
  });

  it('reads other disk formats inside an OVA (a qemu-img VDI)', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const vdi = join(dir, 'a.vdi');
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      const ova = await makeOva(dir, { disk: vdi, diskName: 'disk1.vdi', format: VDI_FORMAT_URI });
      await assertIdentical(ova, vdi);
      await withImage(ova, async (img) => {
        assert.deepEqual(
          img.warnings.map((w) => w.code),
          ['OVA_NOT_STREAM_OPTIMIZED'],
        );
      });
    });
  });
});

describe('ova writer', () => {
  async function checkWritten(dir: string, src: string, srcFormat: string): Promise<string> {
    const ova = join(dir, 'My VM.ova');
    await convertImage(src, ova, { to: 'ova' });
    // GNU tar lists the OVF first, then the VMDK, then the manifest.
    const { stdout } = await run('tar', ['-tvf', ova]);
    const names = stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).pop());
    assert.deepEqual(names, ['My_VM.ovf', 'My_VM-disk1.vmdk', 'My_VM.mf']);
    const x = join(dir, 'x');
    await mkdir(x);
    await run('tar', ['-xf', ova, '-C', x]);
    // sha256sum accepts the manifest's "SHA256(name)= hex" lines.
    const sums = await run('sha256sum', ['-c', 'My_VM.mf'], { cwd: x });
    assert.match(sums.stdout, /My_VM\.ovf: OK\nMy_VM-disk1\.vmdk: OK/);
    const vmdk = join(x, 'My_VM-disk1.vmdk');
    const check = await qemuCheck(vmdk, 'vmdk');
    assert.equal(check.ok, true, check.output);
    assert.equal((await qemuCompare(src, vmdk, srcFormat, 'vmdk')).identical, true);
    // qemu-img reads the VMDK in place inside the OVA too.
    const inPlace = await qemuMemberSpec(ova, 'My_VM-disk1.vmdk');
    assert.equal((await qemuCompare(src, inPlace, srcFormat)).identical, true);
    const info = JSON.parse(await qemuImg('info', '--output=json', vmdk)) as Record<
      string,
      unknown
    >;
    assert.equal(
      (info['format-specific'] as { data: { 'create-type': string } }).data['create-type'],
      'streamOptimized',
    );
    // ferry reads its own OVA back: manifest verified, OVF consistent, identical disk.
    await withImage(ova, async (img) => {
      const d = img.details() as Record<string, unknown>;
      assert.equal(d.manifest, 'verified');
      assert.deepEqual(img.warnings, []);
      const disks = d.disks as Array<{ capacity: number; size: number; format: string }>;
      assert.equal(disks[0]!.capacity, img.virtualSize);
      assert.equal(disks[0]!.size, (await stat(vmdk)).size);
      assert.equal(disks[0]!.format, STREAM_OPTIMIZED);
      const ovf = d.ovf as Record<string, unknown>;
      assert.equal(ovf.name, 'My_VM');
      assert.equal(ovf.cpus, 1);
      assert.equal(ovf.memoryMiB, 1024);
      assert.deepEqual(ovf.controllers, [{ kind: 'scsi', subtype: 'lsilogic' }]);
      assert.deepEqual(ovf.os, {
        id: '101',
        osType: 'otherLinux64Guest',
        description: 'Other Linux (64-bit)',
      });
    });
    await assertIdentical(src, ova);
    return ova;
  }

  it('writes an OVA that GNU tar lists OVF-first and whose VMDK passes qemu-img check and compare', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await checkWritten(dir, raw, 'raw');
    });
  });

  it('writes an OVA from a VDI, and from an empty disk of an odd size', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, 5 * MiB + 3 * 512, [
        { offset: 4096, length: 70 * 1024, fill: 'random' },
        { offset: 5 * MiB, length: 1536, fill: 0x42 },
      ]);
      const vdi = join(dir, 'a.vdi');
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      const d1 = join(dir, '1');
      await mkdir(d1);
      await checkWritten(d1, vdi, 'vdi');
      const empty = join(dir, 'e.raw');
      await writeRawDisk(empty, 3 * MiB + 512, []);
      const d2 = join(dir, '2');
      await mkdir(d2);
      await checkWritten(d2, empty, 'raw');
    });
  });

  it('refuses to overwrite an existing file and leaves nothing behind on abort', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const ova = join(dir, 'a.ova');
      await writeFile(ova, 'keep');
      await assert.rejects(convertImage(raw, ova, { to: 'ova' }), (e) =>
        isFerryError(e, 'FERRY_DESTINATION_EXISTS'),
      );
      assert.equal(await readFile(ova, 'utf8'), 'keep');
      // Aborted after the first chunk: the temporary file is removed.
      const ac = new AbortController();
      await assert.rejects(
        convertImage(raw, join(dir, 'b.ova'), {
          to: 'ova',
          signal: ac.signal,
          onEvent: (e) => {
            if (e.type === 'progress') ac.abort();
          },
        }),
        (e) => isFerryError(e, 'FERRY_ABORTED'),
      );
      const { stdout } = await run('ls', ['-A', dir]);
      assert.deepEqual(stdout.trim().split('\n').sort(), ['a.ova', 'a.raw']);
    });
  });
});
