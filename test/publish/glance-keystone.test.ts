/**
 * scripts/glance.sh's Keystone mode (FERRY_GLANCE_AUTH=keystone: the
 * `authtoken context` pipeline) against a real Keystone started by
 * scripts/keystone.sh (the auth part's script; skipped where it is absent).
 * The Glance instance is this file's own (its own port and directory).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isFerryError } from '../../src/errors/index.js';
import { GlanceClient } from '../../src/publish/openstack/glance-client.js';
import { uploadImageData } from '../../src/publish/openstack/glance-upload.js';
import type { ImageSession } from '../../src/publish/openstack/image-session.js';
import { glanceSkip } from '../helpers/glance.js';

const GLANCE = fileURLToPath(new URL('../../../scripts/glance.sh', import.meta.url));
const KEYSTONE = fileURLToPath(new URL('../../../scripts/keystone.sh', import.meta.url));
const haveKeystone =
  existsSync(KEYSTONE) &&
  spawnSync('/usr/bin/python3', [
    '-c',
    'import importlib.util as u, sys; sys.exit(u.find_spec("keystone") is None)',
  ]).status === 0;
const skip =
  glanceSkip || (haveKeystone ? false : 'scripts/keystone.sh or python3-keystone missing');
const DIR = '/tmp/ferry-glance-keystone';
const PASSWORD = process.env.FERRY_KEYSTONE_ADMIN_PASSWORD ?? 'ferry-admin';

async function adminToken(keystone: string): Promise<{ token: string; project: string }> {
  const res = await fetch(`${keystone}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { id: 'default' }, password: PASSWORD } },
        },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    }),
  });
  assert.equal(res.status, 201);
  const body = (await res.json()) as { token: { project: { id: string } } };
  return { token: res.headers.get('x-subject-token') ?? '', project: body.token.project.id };
}

describe('publish: Glance behind a real Keystone', { skip }, () => {
  let url: string;
  let keystone: string;
  const env = () => ({
    ...process.env,
    FERRY_GLANCE_AUTH: 'keystone',
    FERRY_GLANCE_KEYSTONE_URL: `${keystone}/v3`,
    FERRY_GLANCE_KEYSTONE_USER: 'admin',
    FERRY_GLANCE_KEYSTONE_PASSWORD: PASSWORD,
    FERRY_GLANCE_KEYSTONE_PROJECT: 'admin',
    FERRY_GLANCE_PORT: process.env.FERRY_GLANCE_KEYSTONE_PORT ?? '19294',
  });

  before(() => {
    keystone = execFileSync('bash', [KEYSTONE, 'start'], { encoding: 'utf8' }).trim();
    url = execFileSync('bash', [GLANCE, 'start', DIR], { encoding: 'utf8', env: env() }).trim();
  });
  after(() => {
    execFileSync('bash', [GLANCE, 'stop', DIR], { env: env() });
  });

  it('a bogus token is refused (coded); a refused token is fetched again once', async () => {
    const { token, project } = await adminToken(keystone);
    const bogus = new GlanceClient({
      session: { imageUrl: url, projectId: null, token: async () => 'bogus', invalidate: () => {} },
    });
    await assert.rejects(bogus.listImages(), (e) => isFerryError(e, 'FERRY_GLANCE_UNAUTHORIZED'));
    bogus.close();

    let calls = 0;
    let invalidated = 0;
    const session: ImageSession = {
      imageUrl: url,
      projectId: project,
      token: async () => (calls++ === 0 ? 'expired' : token),
      invalidate: () => {
        invalidated++;
      },
    };
    const client = new GlanceClient({ session });
    try {
      const image = await client.createImage({
        name: 'ferry-ks',
        disk_format: 'raw',
        container_format: 'bare',
      });
      assert.equal(invalidated, 1);
      assert.equal(image.owner, project);
      const data = Buffer.alloc(256 * 1024, 5);
      const result = await uploadImageData(client, image.id, {
        open: () => Readable.from([data]),
        size: data.length,
      });
      assert.equal(result.image.status, 'active');
      assert.equal(await client.deleteImage(image.id), true);
    } finally {
      client.close();
    }
  });
});
