/**
 * ferry publish to Glance end to end: one plan to an AWS target on the local
 * cloud and a Glance target at once, the data checked by downloading it and
 * comparing with qemu-img; the fs layout as an AMI/AKI/ARI triple;
 * re-runs, cleanup after a failure, and deregistration order.
 */
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import {
  deregisterPublished,
  prune,
  publishFromConfig,
  verifyPublished,
} from '../../src/publish/index.js';
import type { GlanceImage } from '../../src/publish/openstack/glance-image.js';
import { GLANCE_PROPERTY } from '../../src/publish/openstack/glance-properties.js';
import { glanceSkip, newProject, startGlance, type TestGlance } from '../helpers/glance.js';
import { awsTarget, makeProject } from '../helpers/publish-project.js';
import { qemuCheck, qemuCompare, withTempDir } from '../helpers/qemu.js';

const VERSION = '0.0.0-test';
const skip = glanceSkip;

/** A stream name no other test file uses: Glance is shared by the test files. */
function uniqueStream(): string {
  return `os${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

async function imagesOf(glance: TestGlance, stream: string): Promise<GlanceImage[]> {
  const client = glance.client();
  try {
    return await client.listImages({ [GLANCE_PROPERTY.stream]: stream });
  } finally {
    client.close();
  }
}

async function download(glance: TestGlance, id: string, to: string): Promise<void> {
  const r = await fetch(`${glance.url}/v2/images/${id}/file`, { headers: glance.headers() });
  assert.equal(r.status, 200);
  await pipeline(Readable.fromWeb(r.body as never), createWriteStream(to));
}

function openstackTarget(name: string, glance: TestGlance, extra = ''): string {
  return `  ${name}:
    type: openstack
    endpoint: ${glance.url}
${extra}`;
}

describe('publish to Glance', { skip }, () => {
  it('one plan publishes to the local cloud and to Glance at once; the data is the render; a re-run finds both', async () => {
    const glance = startGlance();
    await withTempDir(async (dir) => {
      const stream = uniqueStream();
      const member = newProject();
      const p = await makeProject(
        dir,
        awsTarget('aws', { endpoint: 'local', account: 'a', regions: ['us-east-1'] }) +
          openstackTarget(
            'lab',
            glance,
            "    tags: [nightly]\n    properties: {hw_qemu_guest_agent: 'yes'}\n",
          ) +
          openstackTarget(
            'vhd',
            glance,
            `    diskFormat: vhd\n    visibility: shared\n    members: ['${member}']\n`,
          ) +
          openstackTarget('vhdx', glance, '    diskFormat: vhdx\n    upload: glance-direct\n') +
          openstackTarget('small', glance, '    compress: true\n') +
          openstackTarget(
            'web',
            glance,
            "    upload: web-download\n    webDownload: {listen: '127.0.0.1:0'}\n",
          ),
        `  ${stream}:\n    source: ./tree\n    layout: disk\n    boot: none\n`,
      );
      const config = await p.config();
      const [first] = await publishFromConfig(config, { ref: stream, version: VERSION });
      const result = first!.result!;
      assert.equal(result.ok, true, JSON.stringify(result.placements));
      assert.deepEqual(
        result.placements.map((x) => x.key),
        [
          'aws/us-east-1',
          'lab/default',
          'vhd/default',
          'vhdx/default',
          'small/default',
          'web/default',
        ],
      );
      const lab = result.placements[1]!.outcome!;
      const images = await imagesOf(glance, stream);
      assert.equal(images.length, 5);
      const image = images.find((i) => i.id === lab.imageId)!;
      assert.equal(image.id, lab.imageId);
      assert.equal(image.status, 'active');
      assert.equal(image.disk_format, 'qcow2');
      assert.equal(image.container_format, 'bare');
      assert.equal(image.visibility, 'private');
      assert.deepEqual(image.tags, ['nightly']);
      assert.equal(image.properties[GLANCE_PROPERTY.revision], result.request.revision);
      assert.equal(image.properties[GLANCE_PROPERTY.contentHash], result.contentHash);
      assert.equal(image.properties[GLANCE_PROPERTY.role], 'root');
      assert.equal(image.properties.hw_qemu_guest_agent, 'yes');
      assert.equal(image.size, lab.bytesSent);
      // From inspect: the demo tree's os-release (ID ferry-demo is no distribution Glance lists).
      assert.equal(image.properties.os_version, '1');
      assert.equal(image.properties.os_type, 'linux');
      assert.equal(image.properties.os_distro, undefined);
      // visibility: shared with members: the member project sees it once it accepts.
      const vhd = images.find((i) => i.id === result.placements[2]!.outcome!.imageId)!;
      assert.equal(vhd.visibility, 'shared');
      const owner = glance.client();
      try {
        assert.deepEqual(
          (await owner.listMembers(vhd.id)).map((m) => m.member_id),
          [member],
        );
      } finally {
        owner.close();
      }
      const other = glance.client({ project: member });
      try {
        await other.setMemberStatus(vhd.id, member, 'accepted');
        assert.equal((await other.getImage(vhd.id))?.id, vhd.id);
      } finally {
        other.close();
      }

      // What Glance holds is the render, converted: qemu-img says the disks are the same.
      const got = join(dir, 'got.qcow2');
      await download(glance, image.id, got);
      const render = result.render!.path;
      const cmp = await qemuCompare(got, render, 'qcow2', 'raw');
      assert.ok(cmp.identical, cmp.output);
      assert.ok((await qemuCheck(got, 'qcow2')).ok);
      // The other formats too (qemu-img calls VHD "vpc"); a compressed qcow2 is smaller.
      const qemuFormat: Record<string, string> = { vhd: 'vpc', vhdx: 'vhdx', qcow2: 'qcow2' };
      for (const placement of result.placements.slice(2)) {
        const other = images.find((i) => i.id === placement.outcome!.imageId)!;
        assert.equal(other.status, 'active');
        const to = join(dir, `${other.id}.img`);
        await download(glance, other.id, to);
        const same = await qemuCompare(to, render, qemuFormat[other.disk_format!], 'raw');
        assert.ok(same.identical, `${placement.key}: ${same.output}`);
      }
      const small = images.find((i) => i.id === result.placements[4]!.outcome!.imageId)!;
      assert.ok(small.size! < image.size!, `compressed ${small.size} < ${image.size}`);
      // The shared conversion is removed once every placement is done with it.
      const leftovers = await readdir(p.state.renders);
      assert.ok(!leftovers.some((f) => f.startsWith('glance-')), leftovers.join(' '));

      // ferry verify reads every placement back: the AMI's snapshot and each Glance download.
      const ref = `${stream}@${result.request.revision!.slice(0, 12)}`;
      const verified = await verifyPublished(config, { ref });
      assert.deepEqual(
        verified.placements.map((v) => [v.key, v.status]),
        result.placements.map((x) => [x.key, 'ok']),
      );
      assert.ok(verified.placements.every((v) => (v.result?.blocks ?? 0) > 0));

      const [again] = await publishFromConfig(config, { ref: stream, version: VERSION });
      assert.equal(again!.result!.ok, true);
      assert.ok(again!.result!.placements.every((x) => x.outcome?.existing === true));
      assert.equal(again!.result!.placements[1]!.outcome!.imageId, image.id);
      assert.equal((await imagesOf(glance, stream)).length, 5, 'no second image');

      const removed = await deregisterPublished(config, {
        ref: `${stream}@${result.request.revision!.slice(0, 12)}`,
        version: VERSION,
      });
      assert.deepEqual(removed.removed.map((r) => r.placement).sort(), [
        'aws/us-east-1',
        'lab/default',
        'small/default',
        'vhd/default',
        'vhdx/default',
        'web/default',
      ]);
      assert.deepEqual(await imagesOf(glance, stream), []);
    });
  });

  it('the fs layout goes up as aki + ari + ami, and is removed ami first', async () => {
    const glance = startGlance();
    await withTempDir(async (dir) => {
      const stream = uniqueStream();
      const p = await makeProject(
        dir,
        openstackTarget('lab', glance),
        `  ${stream}:\n    source: ./tree\n    layout: fs\n`,
      );
      await mkdir(join(p.tree, 'boot'), { recursive: true });
      const kernel = Buffer.concat([Buffer.from('MZ fake kernel '), Buffer.alloc(70_000, 7)]);
      const initrd = Buffer.concat([Buffer.from('070701'), Buffer.alloc(50_000, 3)]);
      await writeFile(join(p.tree, 'boot/vmlinuz-6.1.0-13-amd64'), kernel);
      await writeFile(join(p.tree, 'boot/initrd.img-6.1.0-13-amd64'), initrd);
      const config = await p.config();
      const [first] = await publishFromConfig(config, { ref: stream, version: VERSION });
      assert.equal(first!.result!.ok, true, JSON.stringify(first!.result!.placements));
      const outcome = first!.result!.placements[0]!.outcome!;
      const images = await imagesOf(glance, stream);
      const byRole = new Map(images.map((i) => [i.properties[GLANCE_PROPERTY.role], i]));
      const ami = byRole.get('root')!;
      const aki = byRole.get('kernel')!;
      const ari = byRole.get('ramdisk')!;
      assert.equal(images.length, 3);
      assert.deepEqual([ami.disk_format, aki.disk_format, ari.disk_format], ['ami', 'aki', 'ari']);
      assert.deepEqual(
        [ami.container_format, aki.container_format, ari.container_format],
        ['ami', 'aki', 'ari'],
      );
      assert.equal(ami.properties.kernel_id, aki.id);
      assert.equal(ami.properties.ramdisk_id, ari.id);
      assert.equal(outcome.imageId, ami.id);
      assert.deepEqual(outcome.snapshotIds, [ari.id, aki.id]);
      for (const [image, bytes] of [
        [aki, kernel],
        [ari, initrd],
      ] as const) {
        const to = join(dir, `${image.id}.bin`);
        await download(glance, image.id, to);
        assert.ok((await readFile(to)).equals(bytes), `${image.disk_format} holds the file`);
      }
      // The root filesystem is an ext4 image of the tree (no partition table).
      const root = join(dir, 'root.img');
      await download(glance, ami.id, root);
      assert.equal((await readFile(root)).readUInt16LE(1024 + 0x38), 0xef53, 'ext4 magic');

      const ok = await verifyPublished(config, {
        ref: `${stream}@${first!.result!.request.revision!.slice(0, 12)}`,
      });
      assert.equal(ok.placements[0]?.status, 'ok', JSON.stringify(ok.placements[0]?.error));
      // A protected kernel cannot be deleted: the ami and the ari go first and stay gone.
      const admin = glance.client();
      await admin.updateImage(aki.id, { set: { protected: true } });
      await assert.rejects(
        deregisterPublished(config, {
          ref: `${stream}@${first!.result!.request.revision!.slice(0, 12)}`,
          version: VERSION,
        }),
        (e: unknown) => isFerryError(e),
      );
      assert.equal(await admin.getImage(ami.id).then((i) => i?.status ?? 'gone'), 'gone');
      const after = await verifyPublished(config, {
        ref: `${stream}@${first!.result!.request.revision!.slice(0, 12)}`,
      });
      assert.equal(after.placements[0]?.status, 'error', 'the ami is gone');
      assert.equal(await admin.getImage(ari.id).then((i) => i?.status ?? 'gone'), 'gone');
      assert.equal((await admin.getImage(aki.id))?.status, 'active');
      await admin.updateImage(aki.id, { set: { protected: false } });
      assert.equal(await admin.deleteImage(aki.id), true);
      admin.close();
    });
  });

  it('a placement that fails after its upload removes what it made', async () => {
    const glance = startGlance();
    await withTempDir(async (dir) => {
      const stream = uniqueStream();
      // A member may not make an image public: the share step fails with 403.
      const p = await makeProject(
        dir,
        openstackTarget('lab', glance, '    visibility: public\n    diskFormat: raw\n'),
        `  ${stream}:\n    source: ./tree\n    layout: disk\n    boot: none\n`,
      );
      const [out] = await publishFromConfig(await p.config(), { ref: stream, version: VERSION });
      const placement = out!.result!.placements[0]!;
      assert.equal(out!.result!.ok, false);
      assert.equal(placement.state, 'failed');
      assert.equal(placement.error?.code, 'FERRY_GLANCE_FORBIDDEN');
      assert.equal(placement.cleanedUp.length, 1);
      assert.deepEqual(await imagesOf(glance, stream), [], 'nothing left queued or active');
    });
  });

  it('prune keeps the newest images of a stream per target and removes the rest', async () => {
    const glance = startGlance();
    await withTempDir(async (dir) => {
      const stream = uniqueStream();
      const p = await makeProject(
        dir,
        openstackTarget('lab', glance, '    diskFormat: raw\n    retention: {keep: 1}\n'),
        `  ${stream}:\n    source: ./tree\n    layout: disk\n    boot: none\n`,
      );
      const config = await p.config();
      const [one] = await publishFromConfig(config, { ref: stream, version: VERSION });
      await writeFile(join(p.tree, 'var/lib/ferry-demo/build-info'), 'build: 2\n');
      const [two] = await publishFromConfig(config, { ref: stream, version: VERSION });
      assert.ok(one!.result!.ok && two!.result!.ok);
      assert.equal((await imagesOf(glance, stream)).length, 2);
      const r = await prune(config, { version: VERSION });
      assert.deepEqual(
        r.pruned.map((c) => c.imageId),
        [one!.result!.placements[0]!.outcome!.imageId],
      );
      assert.deepEqual(
        (await imagesOf(glance, stream)).map((i) => i.id),
        [two!.result!.placements[0]!.outcome!.imageId],
      );
    });
  });
});
