/**
 * ferry publish to a Glance behind a real Keystone: the target's cloud given
 * inline (password) and through clouds.yaml (an application credential, the
 * file found by OS_CLIENT_CONFIG_FILE and the cloud by OS_CLOUD); the image
 * endpoint comes from the catalog by region, and the image belongs to the
 * user's project. Glance runs with Keystone's authtoken middleware here
 * (its own instance: scripts/glance.sh with FERRY_GLANCE_AUTH=keystone).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { publishFromConfig } from '../../src/publish/index.js';
import { GlanceClient } from '../../src/publish/openstack/glance-client.js';
import { GLANCE_PROPERTY } from '../../src/publish/openstack/glance-properties.js';
import { openImageSession } from '../../src/publish/openstack/keystone-auth.js';
import { glanceSkip } from '../helpers/glance.js';
import { keystoneSkip, startKeystone, unique } from '../helpers/keystone.js';
import { makeProject } from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const VERSION = '0.0.0-test';
const SCRIPT = fileURLToPath(new URL('../../../scripts/glance.sh', import.meta.url));
const GLANCE_DIR = '/tmp/ferry-glance-keystone';

function glanceEnv(keystoneUrl: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    FERRY_GLANCE_AUTH: 'keystone',
    FERRY_GLANCE_PORT: process.env.FERRY_GLANCE_KEYSTONE_PORT ?? '19393',
    FERRY_GLANCE_DIR: GLANCE_DIR,
    FERRY_GLANCE_KEYSTONE_URL: keystoneUrl,
    FERRY_GLANCE_KEYSTONE_USER: 'glance',
    FERRY_GLANCE_KEYSTONE_PASSWORD: 'glance-secret',
    FERRY_GLANCE_KEYSTONE_PROJECT: 'service',
  };
}

describe('publish to Glance with Keystone auth', { skip: glanceSkip || keystoneSkip }, () => {
  after(() => {
    execFileSync('bash', [SCRIPT, 'stop', GLANCE_DIR]);
  });

  it('authenticates inline and through clouds.yaml, finds Glance in the catalog, publishes into the project', async () => {
    const keystone = startKeystone();
    // Glance's own service user (authtoken validates tokens with it).
    const service = await keystone.createProject(unique('service'));
    const glanceUser = await keystone.createUser({
      name: unique('glance'),
      password: 'glance-secret',
    });
    await keystone.assignRole(glanceUser.id, service.id, 'admin');
    const env = glanceEnv(keystone.url);
    env.FERRY_GLANCE_KEYSTONE_USER = glanceUser.name;
    env.FERRY_GLANCE_KEYSTONE_PROJECT = service.name;
    execFileSync('bash', [SCRIPT, 'stop', GLANCE_DIR]);
    const glanceUrl = execFileSync('bash', [SCRIPT, 'start', GLANCE_DIR], {
      env,
      encoding: 'utf8',
    }).trim();
    const region = unique('R');
    const endpoints = await keystone.addImageEndpoints([
      { region, interface: 'public', url: glanceUrl },
      { region, interface: 'internal', url: 'http://127.0.0.1:1' },
    ]);
    const project = await keystone.createProject();
    const user = await keystone.createUser({ projectId: project.id });
    await keystone.assignRole(user.id, project.id, 'member');
    // Glance's policy lets only admins copy an image to another store (copy-image).
    await keystone.assignRole(user.id, project.id, 'admin');
    const cred = await keystone.createAppCredential(user, project.id);
    const saved = { cfg: process.env.OS_CLIENT_CONFIG_FILE, cloud: process.env.OS_CLOUD };
    try {
      await withTempDir(async (dir) => {
        const stream = unique('ks').replace(/-/g, '');
        const clouds = join(dir, 'clouds.yaml');
        await writeFile(
          clouds,
          `clouds:
  lab:
    auth_type: v3applicationcredential
    auth:
      auth_url: ${keystone.authUrl}
      application_credential_id: ${cred.id}
      application_credential_secret: ${cred.secret}
    region_name: ${region}
`,
        );
        process.env.OS_CLIENT_CONFIG_FILE = clouds;
        process.env.OS_CLOUD = 'lab';
        const p = await makeProject(
          dir,
          `  inline:
    type: openstack
    auth:
      auth_url: ${keystone.authUrl}
      username: ${user.name}
      password: ${user.password}
      user_domain_id: default
      project_id: ${project.id}
    regions: [${region}]
    diskFormat: raw
    stores: [slow]
  fromfile:
    type: openstack
    diskFormat: vmdk
`,
          `  ${stream}:\n    source: ./tree\n    layout: disk\n    boot: none\n`,
        );
        const [out] = await publishFromConfig(await p.config(), { ref: stream, version: VERSION });
        const result = out!.result!;
        assert.equal(result.ok, true, JSON.stringify(result.placements));
        assert.deepEqual(
          result.placements.map((x) => x.key),
          [`inline/${region}`, 'fromfile/default'],
        );

        const session = await openImageSession(
          {
            name: null,
            interface: 'public',
            verify: true,
            authType: 'password',
            auth: {
              authUrl: keystone.authUrl,
              user: { id: user.id },
              password: user.password,
              project: { id: project.id },
            },
          },
          { region },
        );
        assert.equal(session.imageUrl, glanceUrl, 'the public endpoint of the region');
        const client = new GlanceClient({ session });
        try {
          const images = await client.listImages({ [GLANCE_PROPERTY.stream]: stream });
          assert.deepEqual(images.map((i) => i.disk_format).sort(), ['raw', 'vmdk']);
          const raw = images.find((i) => i.disk_format === 'raw')!;
          assert.deepEqual([...raw.stores].sort(), ['fast', 'slow'], 'copied to the second store');
          for (const image of images) {
            assert.equal(image.status, 'active');
            assert.equal(image.owner, project.id, 'the image is the project’s');
          }
          // Without a token Glance refuses: the auth path is real.
          const r = await fetch(`${glanceUrl}/v2/images`);
          assert.equal(r.status, 401);
          for (const image of images) await client.deleteImage(image.id);
        } finally {
          client.close();
        }
      });
    } finally {
      if (saved.cfg === undefined) delete process.env.OS_CLIENT_CONFIG_FILE;
      else process.env.OS_CLIENT_CONFIG_FILE = saved.cfg;
      if (saved.cloud === undefined) delete process.env.OS_CLOUD;
      else process.env.OS_CLOUD = saved.cloud;
      await keystone.deleteEndpoints(endpoints);
    }
  });
});
