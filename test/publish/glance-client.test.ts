import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import type { GlanceClient } from '../../src/publish/openstack/glance-client.js';
import { waitForImage } from '../../src/publish/openstack/glance-wait.js';
import { glanceSkip, newProject, startGlance, type TestGlance } from '../helpers/glance.js';

const run = randomBytes(6).toString('hex');

describe('publish: Glance client against a real Glance', { skip: glanceSkip }, () => {
  let glance: TestGlance;
  let client: GlanceClient;
  const created: string[] = [];

  before(() => {
    glance = startGlance();
    client = glance.client();
  });
  after(async () => {
    for (const id of created) await client.deleteImage(id).catch(() => {});
    client.close();
  });

  async function newImage(extra: Record<string, string> = {}) {
    const image = await client.createImage({
      name: `ferry-test-${run}`,
      disk_format: 'raw',
      container_format: 'bare',
      properties: { ferry_test_run: run, ...extra },
    });
    created.push(image.id);
    return image;
  }

  it('creates, gets and deletes an image; a missing one is null', async () => {
    const image = await newImage({ os_distro: 'debian' });
    assert.equal(image.status, 'queued');
    assert.equal(image.visibility, 'shared');
    assert.equal(image.size, null);
    assert.equal(image.properties.os_distro, 'debian');
    assert.equal(image.properties.ferry_test_run, run);
    const got = await client.getImage(image.id);
    assert.equal(got?.id, image.id);
    assert.equal(await client.deleteImage(image.id), true);
    assert.equal(await client.getImage(image.id), null);
    assert.equal(await client.deleteImage(image.id), false, 'a second delete finds nothing');
  });

  it('a create with our own id is found again when repeated', async () => {
    const id = crypto.randomUUID();
    const input = { id, name: `ferry-test-${run}`, disk_format: 'raw', container_format: 'bare' };
    const first = await client.createImage(input);
    created.push(first.id);
    const again = await client.createImage(input);
    assert.equal(again.id, id);
  });

  it('schema-image.json validates kernel_id as a UUID', async () => {
    await assert.rejects(
      client.createImage({
        name: 'bad-kernel',
        disk_format: 'ami',
        container_format: 'ami',
        properties: { kernel_id: 'not-a-uuid' },
      }),
      (e) => isFerryError(e, 'FERRY_GLANCE_REQUEST') && e.details.status === 400,
    );
    const kernel = await newImage();
    const ami = await client.createImage({
      name: `ferry-test-${run}`,
      disk_format: 'ami',
      container_format: 'ami',
      properties: { kernel_id: kernel.id },
    });
    created.push(ami.id);
    assert.equal(ami.properties.kernel_id, kernel.id);
  });

  it('updateImage adds missing and replaces existing properties, removes present ones', async () => {
    const image = await newImage({ ferry_a: '1' });
    const updated = await client.updateImage(image.id, {
      set: { ferry_a: '2', ferry_b: 'new', name: `renamed-${run}` },
      remove: ['ferry_never_there'],
    });
    assert.equal(updated.properties.ferry_a, '2');
    assert.equal(updated.properties.ferry_b, 'new');
    assert.equal(updated.name, `renamed-${run}`);
    const removed = await client.updateImage(image.id, { remove: ['ferry_a'] });
    assert.equal(removed.properties.ferry_a, undefined);
    assert.equal(removed.properties.ferry_b, 'new');
    // What the raw patch does with the wrong op: Glance's 409, coded.
    await assert.rejects(
      client.patchImage(image.id, [{ op: 'replace', path: '/ferry_missing', value: 'x' }]),
      (e) => isFerryError(e, 'FERRY_GLANCE_CONFLICT') && e.details.status === 409,
    );
    await assert.rejects(
      client.patchImage(image.id, [{ op: 'remove', path: '/ferry_missing' }]),
      (e) => isFerryError(e, 'FERRY_GLANCE_CONFLICT'),
    );
  });

  it('tags: add (twice is fine), remove, and a missing tag is no error', async () => {
    const image = await newImage();
    await client.addTag(image.id, 'ferry');
    await client.addTag(image.id, 'ferry');
    await client.addTag(image.id, 'stream debian 12');
    await assert.rejects(client.addTag(image.id, 'a/b'), (e) => isFerryError(e, 'FERRY_USAGE'));
    const tagged = await client.getImage(image.id);
    assert.deepEqual([...(tagged?.tags ?? [])].sort(), ['ferry', 'stream debian 12']);
    await client.removeTag(image.id, 'ferry');
    await client.removeTag(image.id, 'never-there');
    assert.deepEqual((await client.getImage(image.id))?.tags, ['stream debian 12']);
  });

  it('members: shared to another project, visible to it after it accepts', async () => {
    const image = await newImage();
    const other = newProject();
    const asOther = glance.client({ project: other });
    try {
      const before = await asOther.listImages({ ferry_test_run: run });
      assert.ok(!before.some((i) => i.id === image.id), 'not visible before sharing');
      const member = await client.addMember(image.id, other);
      assert.equal(member.status, 'pending');
      assert.equal(member.member_id, other);
      const pending = await asOther.listImages({ ferry_test_run: run });
      assert.ok(
        !pending.some((i) => i.id === image.id),
        'a pending share is not listed by default',
      );
      const accepted = await asOther.setMemberStatus(image.id, other, 'accepted');
      assert.equal(accepted.status, 'accepted');
      const after = await asOther.listImages({ ferry_test_run: run });
      assert.ok(
        after.some((i) => i.id === image.id),
        'listed once accepted',
      );
      assert.equal((await asOther.getImage(image.id))?.id, image.id);
      const members = await client.listMembers(image.id);
      assert.deepEqual(
        members.map((m) => [m.member_id, m.status]),
        [[other, 'accepted']],
      );
      // The member may not change the image.
      await assert.rejects(
        asOther.updateImage(image.id, { set: { ferry_x: '1' } }),
        (e) => isFerryError(e, 'FERRY_GLANCE_FORBIDDEN') || isFerryError(e, 'FERRY_GLANCE_REQUEST'),
      );
    } finally {
      asOther.close();
    }
  });

  it('making an image public as a member is 403, coded; as admin it works', async () => {
    const image = await newImage();
    await assert.rejects(
      client.updateImage(image.id, { set: { visibility: 'public' } }),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_FORBIDDEN') &&
        e.details.status === 403 &&
        /publicize_image/.test(String(e.details.glanceMessage)),
    );
    const admin = glance.client({ roles: ['admin', 'member', 'reader'] });
    try {
      const pub = await admin.updateImage(image.id, { set: { visibility: 'public' } });
      assert.equal(pub.visibility, 'public');
    } finally {
      admin.close();
    }
  });

  it('lists by a ferry property, following next links page by page', async () => {
    const tag = randomBytes(4).toString('hex');
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await newImage({ ferry_list: tag })).id);
    await newImage({ ferry_list: 'other' });
    const all = await client.listImages({ ferry_list: tag }, { pageSize: 2 });
    assert.equal(all.length, 5);
    assert.deepEqual(new Set(all.map((i) => i.id)), ids);
    await assert.rejects(
      client.listImages({ ferry_list: tag }, { pageSize: 2, maxPages: 2 }),
      (e) => isFerryError(e, 'FERRY_GLANCE_RESPONSE') && e.details.maxPages === 2,
    );
    await assert.rejects(client.listImages({}, { pageSize: 5000 }), (e) =>
      isFerryError(e, 'FERRY_USAGE'),
    );
  });

  it('waiting for a status: a time limit and an abort, both coded', async () => {
    const image = await newImage();
    const started = Date.now();
    await assert.rejects(
      waitForImage(client, image.id, { until: ['active'], timeoutMs: 400, pollMs: 50 }),
      (e) => isFerryError(e, 'FERRY_GLANCE_TIMEOUT') && e.details.status === 'queued',
    );
    assert.ok(Date.now() - started < 5000);
    await assert.rejects(
      waitForImage(client, image.id, { until: ['active'], signal: AbortSignal.timeout(300) }),
      (e) => isFerryError(e, 'FERRY_ABORTED'),
    );
    assert.equal((await waitForImage(client, image.id, { until: ['queued'] })).id, image.id);
    await client.deleteImage(image.id);
    await assert.rejects(waitForImage(client, image.id, { until: ['active'] }), (e) =>
      isFerryError(e, 'FERRY_GLANCE_IMAGE_FAILED'),
    );
  });

  it('discovers the import methods and the two stores', async () => {
    const methods = await client.importMethods();
    for (const m of ['glance-direct', 'web-download', 'copy-image'])
      assert.ok(methods.includes(m), m);
    const stores = await client.stores();
    assert.deepEqual(
      stores.map((s) => [s.id, s.isDefault]),
      [
        ['fast', true],
        ['slow', false],
      ],
    );
  });
});
