/**
 * clouds.yaml as OpenStack's clients find and read it (search order,
 * OS_CLIENT_CONFIG_FILE, OS_CLOUD, secure.yaml merged over it), the checks
 * of each auth type, a small corpus of malformed files with their codes and
 * lines, and the inline form of a ferry.yaml target.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MapReader } from '../../src/config/schema-reader.js';
import { parseYamlTree } from '../../src/config/yaml-tree.js';
import { type FerryError, isFerryError } from '../../src/errors/index.js';
import {
  cloudsSearchPath,
  loadCloud,
  resolveCloudSpec,
} from '../../src/publish/openstack/clouds-yaml.js';
import {
  OPENSTACK_TARGET_KEYS,
  parseOpenStackTarget,
} from '../../src/publish/openstack/openstack-cloud.js';
import { withTempDir } from '../helpers/qemu.js';

const SECRET = 'pa55-w0rd-never-shown';

const BASIC = `clouds:
  devstack:
    auth:
      auth_url: http://127.0.0.1:5000
      username: demo
      password: ${SECRET}
      project_name: demo
      user_domain_name: Users
      project_domain_id: default
    region_name: RegionOne
    some_future_key: {nested: [1, 2]}
`;

interface Layout {
  readonly cwd: string;
  readonly home: string;
  readonly xdg: string;
  readonly system: string;
}

async function layout(dir: string): Promise<Layout> {
  const l = {
    cwd: join(dir, 'cwd'),
    home: join(dir, 'home'),
    xdg: join(dir, 'xdg'),
    system: join(dir, 'etc-openstack'),
  };
  for (const d of [l.cwd, join(l.home, '.config', 'openstack'), join(l.xdg, 'openstack'), l.system])
    await mkdir(d, { recursive: true });
  return l;
}

function opts(l: Layout, env: Record<string, string> = {}) {
  return { cwd: l.cwd, systemDir: l.system, env: { HOME: l.home, ...env } };
}

function cloudYaml(name: string, user: string): string {
  return `clouds:\n  ${name}:\n    auth:\n      auth_url: http://k.example:5000/v3/\n      username: ${user}\n      password: x\n`;
}

async function rejects(p: Promise<unknown>, code: string, line?: number): Promise<FerryError> {
  let caught: unknown;
  try {
    await p;
  } catch (error) {
    caught = error;
  }
  assert.ok(isFerryError(caught), `expected a FerryError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (line !== undefined) assert.equal(caught.details.line, line, caught.message);
  assert.ok(!caught.message.includes(SECRET), 'a secret in the message');
  assert.ok(!JSON.stringify(caught.details).includes(SECRET), 'a secret in the details');
  return caught;
}

describe('clouds.yaml', () => {
  it('reads a password cloud, ignoring unknown keys, with domains and the v3 URL', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(join(l.cwd, 'clouds.yaml'), BASIC);
      const c = await loadCloud('devstack', opts(l));
      assert.equal(c.authType, 'password');
      assert.equal(c.name, 'devstack');
      assert.equal(c.regionName, 'RegionOne');
      assert.equal(c.interface, 'public');
      assert.equal(c.verify, true);
      if (c.authType !== 'password') return;
      assert.equal(c.auth.authUrl, 'http://127.0.0.1:5000/v3');
      assert.deepEqual(c.auth.user, { name: 'demo', domain: { name: 'Users' } });
      assert.deepEqual(c.auth.project, { name: 'demo', domain: { id: 'default' } });
      assert.equal(c.auth.password, SECRET);
    });
  });

  it('looks in ./, then $XDG_CONFIG_HOME or ~/.config/openstack, then /etc/openstack', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      const user = async (env: Record<string, string> = {}) => {
        const c = await loadCloud('c', opts(l, env));
        assert.equal(c.authType, 'password');
        return c.authType === 'password' && 'name' in c.auth.user ? c.auth.user.name : null;
      };
      await rejects(loadCloud('c', opts(l)), 'FERRY_OPENSTACK_CLOUD_NOT_FOUND');
      await writeFile(join(l.system, 'clouds.yaml'), cloudYaml('c', 'system'));
      assert.equal(await user(), 'system');
      await writeFile(join(l.home, '.config', 'openstack', 'clouds.yml'), cloudYaml('c', 'home'));
      assert.equal(await user(), 'home');
      // XDG_CONFIG_HOME replaces ~/.config.
      assert.equal(await user({ XDG_CONFIG_HOME: l.xdg }), 'system');
      await writeFile(join(l.xdg, 'openstack', 'clouds.yaml'), cloudYaml('c', 'xdg'));
      assert.equal(await user({ XDG_CONFIG_HOME: l.xdg }), 'xdg');
      await writeFile(join(l.cwd, 'clouds.yaml'), cloudYaml('c', 'cwd'));
      assert.equal(await user({ XDG_CONFIG_HOME: l.xdg }), 'cwd');
      // OS_CLIENT_CONFIG_FILE comes before all of them.
      const explicit = join(dir, 'explicit.yaml');
      await writeFile(explicit, cloudYaml('c', 'explicit'));
      assert.equal(await user({ OS_CLIENT_CONFIG_FILE: explicit }), 'explicit');
      // The first file found is the only one read (as the clients do).
      await rejects(loadCloud('other', opts(l)), 'FERRY_OPENSTACK_CLOUD_NOT_FOUND');
      // An explicit file that does not exist is an error, not skipped.
      await rejects(
        loadCloud('c', opts(l, { OS_CLIENT_CONFIG_FILE: join(dir, 'missing.yaml') })),
        'FERRY_OPENSTACK_CLOUD_NOT_FOUND',
      );
      const order = cloudsSearchPath('clouds', opts(l));
      assert.deepEqual(order.slice(0, 3), [
        join(l.cwd, 'clouds.yaml'),
        join(l.cwd, 'clouds.yml'),
        join(l.cwd, 'clouds.json'),
      ]);
      assert.equal(order[3], join(l.home, '.config', 'openstack', 'clouds.yaml'));
      assert.equal(order[6], join(l.system, 'clouds.yaml'));
    });
  });

  it('takes the cloud from OS_CLOUD when none is named, and lists the clouds when it is not there', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(
        join(l.cwd, 'clouds.yaml'),
        `${cloudYaml('one', 'u1')}  two:\n    auth: {auth_url: 'http://k:5000', username: u2, password: p}\n`,
      );
      const c = await loadCloud(undefined, opts(l, { OS_CLOUD: 'two' }));
      assert.equal(c.name, 'two');
      // A named cloud wins over OS_CLOUD.
      assert.equal((await loadCloud('one', opts(l, { OS_CLOUD: 'two' }))).name, 'one');
      await rejects(loadCloud(undefined, opts(l)), 'FERRY_OPENSTACK_CLOUD_NOT_FOUND');
      const e = await rejects(
        loadCloud(undefined, opts(l, { OS_CLOUD: 'three' })),
        'FERRY_OPENSTACK_CLOUD_NOT_FOUND',
      );
      assert.match(e.message, /one, two/);
    });
  });

  it('merges secure.yaml over the cloud (and its auth, key by key)', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(
        join(l.cwd, 'clouds.yaml'),
        'clouds:\n  c:\n    auth:\n      auth_url: http://k:5000\n      username: u\n      project_id: p1\n    interface: public\n',
      );
      // Without the secret, the cloud is incomplete.
      await rejects(loadCloud('c', opts(l)), 'FERRY_CONFIG_INVALID');
      await writeFile(
        join(l.home, '.config', 'openstack', 'secure.yaml'),
        `clouds:\n  c:\n    auth:\n      password: ${SECRET}\n    interface: internal\n  unrelated: {auth: {password: z}}\n`,
      );
      const c = await loadCloud('c', opts(l));
      assert.equal(c.authType, 'password');
      assert.equal(c.interface, 'internal');
      if (c.authType !== 'password') return;
      assert.equal(c.auth.password, SECRET);
      assert.deepEqual(c.auth.user, { name: 'u', domain: { id: 'default' } });
      assert.deepEqual(c.auth.project, { id: 'p1' });
      // OS_CLIENT_SECURE_FILE comes first.
      const s = join(dir, 's.yaml');
      await writeFile(s, 'clouds:\n  c:\n    auth:\n      password: other\n');
      const c2 = await loadCloud('c', opts(l, { OS_CLIENT_SECURE_FILE: s }));
      assert.equal(c2.authType === 'password' ? c2.auth.password : null, 'other');
      assert.equal(c2.interface, 'public');
    });
  });

  it('reads application credentials, tokens and no auth', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(
        join(l.cwd, 'clouds.yaml'),
        `clouds:
  byid:
    auth_type: v3applicationcredential
    auth: {auth_url: 'https://k/identity/v3', application_credential_id: ac1, application_credential_secret: s}
    image_interface: internal
    interface: admin
  byname:
    auth_type: v3applicationcredential
    auth: {auth_url: 'https://k/identity', application_credential_name: n, application_credential_secret: s, user_id: u9}
  tok:
    auth_type: v3token
    auth: {auth_url: 'http://k:5000/v3', token: t0k, project_id: p}
  open:
    auth_type: none
    image_endpoint_override: 'http://127.0.0.1:9292/v2/'
    cacert: ca/bundle.pem
    verify: false
`,
      );
      const a = await loadCloud('byid', opts(l));
      assert.equal(a.authType, 'v3applicationcredential');
      assert.equal(a.interface, 'internal');
      if (a.authType === 'v3applicationcredential') {
        assert.equal(a.auth.authUrl, 'https://k/identity/v3');
        assert.deepEqual(a.auth.credential, { id: 'ac1' });
      }
      const b = await loadCloud('byname', opts(l));
      if (b.authType !== 'v3applicationcredential') assert.fail('not an app credential');
      assert.deepEqual(b.auth.credential, { name: 'n', user: { id: 'u9' } });
      const t = await loadCloud('tok', opts(l));
      if (t.authType !== 'token') assert.fail('not a token');
      assert.equal(t.auth.token, 't0k');
      assert.deepEqual(t.auth.project, { id: 'p' });
      const o = await loadCloud('open', opts(l));
      assert.equal(o.authType, 'none');
      assert.equal(o.imageEndpointOverride, 'http://127.0.0.1:9292/v2/');
      assert.equal(o.cacert, join(l.cwd, 'ca/bundle.pem'));
      assert.equal(o.verify, false);
    });
  });

  // The corpus of bad files: each refused with its code, at its line.
  const BAD: Array<{ name: string; yaml: string; code: string; line?: number }> = [
    { name: 'bad YAML', yaml: 'clouds:\n  c: [unclosed\n', code: 'FERRY_CONFIG_INVALID' },
    {
      name: 'duplicate key',
      yaml: 'clouds:\n  c: {}\n  c: {}\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 3,
    },
    { name: 'clouds is a list', yaml: 'clouds:\n  - c\n', code: 'FERRY_CONFIG_INVALID', line: 2 },
    { name: 'top is a scalar', yaml: 'just text\n', code: 'FERRY_CONFIG_INVALID', line: 1 },
    {
      name: 'auth is a string',
      yaml: 'clouds:\n  c:\n    auth: nope\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 3,
    },
    {
      name: 'password is a list',
      yaml: `clouds:\n  c:\n    auth:\n      auth_url: http://k\n      username: u\n      password: [${SECRET}]\n`,
      code: 'FERRY_CONFIG_INVALID',
      line: 6,
    },
    {
      name: 'project_id is a number',
      yaml: 'clouds:\n  c:\n    auth:\n      auth_url: http://k\n      username: u\n      password: p\n      project_id: 12345\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 7,
    },
    {
      name: 'unknown auth type',
      yaml: 'clouds:\n  c:\n    auth_type: v3oidcpassword\n    auth: {auth_url: http://k}\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 3,
    },
    {
      name: 'auth_url not a URL',
      yaml: `clouds:\n  c:\n    auth:\n      auth_url: keystone:5000\n      username: u\n      password: ${SECRET}\n`,
      code: 'FERRY_CONFIG_INVALID',
      line: 4,
    },
    {
      name: 'auth_url with credentials',
      yaml: 'clouds:\n  c:\n    auth:\n      auth_url: http://u:p@k:5000\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 4,
    },
    {
      name: 'Keystone v2.0',
      yaml: 'clouds:\n  c:\n    auth:\n      auth_url: http://k:5000/v2.0\n      username: u\n      password: p\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'no auth_url',
      yaml: `clouds:\n  c:\n    auth:\n      username: u\n      password: ${SECRET}\n`,
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'no password',
      yaml: 'clouds:\n  c:\n    auth:\n      auth_url: http://k\n      username: u\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'no user',
      yaml: `clouds:\n  c:\n    auth:\n      auth_url: http://k\n      password: ${SECRET}\n`,
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'app credential by name without its user',
      yaml: 'clouds:\n  c:\n    auth_type: v3applicationcredential\n    auth: {auth_url: http://k, application_credential_name: n, application_credential_secret: s}\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'app credential without secret',
      yaml: 'clouds:\n  c:\n    auth_type: v3applicationcredential\n    auth: {auth_url: http://k, application_credential_id: i}\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'token auth without token',
      yaml: 'clouds:\n  c:\n    auth_type: token\n    auth: {auth_url: http://k}\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'none without endpoint',
      yaml: 'clouds:\n  c:\n    auth_type: none\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 2,
    },
    {
      name: 'bad interface',
      yaml: 'clouds:\n  c:\n    auth: {auth_url: http://k, username: u, password: p}\n    interface: private\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 4,
    },
    {
      name: 'verify is a string',
      yaml: 'clouds:\n  c:\n    auth: {auth_url: http://k, username: u, password: p}\n    verify: "no"\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 4,
    },
    {
      name: 'endpoint override is ftp',
      yaml: 'clouds:\n  c:\n    auth_type: none\n    image_endpoint_override: ftp://k/\n',
      code: 'FERRY_CONFIG_INVALID',
      line: 4,
    },
    {
      name: 'an alias bomb',
      yaml: `a: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from(
        { length: 12 },
        (_, i) =>
          `b${i}: &b${i} [${Array(10)
            .fill(i === 0 ? '*a' : `*b${i - 1}`)
            .join(', ')}]`,
      ).join('\n')}\nclouds: {c: {auth_type: none, image_endpoint_override: 'http://k'}}\n`,
      code: 'FERRY_CONFIG_INVALID',
    },
    {
      name: 'a secret longer than any secret',
      yaml: `clouds:\n  c:\n    auth: {auth_url: http://k, username: u, password: ${'p'.repeat(20_000)}}\n`,
      code: 'FERRY_CONFIG_INVALID',
      line: 3,
    },
    { name: 'no such cloud', yaml: 'clouds:\n  d: {}\n', code: 'FERRY_OPENSTACK_CLOUD_NOT_FOUND' },
    { name: 'no clouds at all', yaml: 'other: 1\n', code: 'FERRY_OPENSTACK_CLOUD_NOT_FOUND' },
  ];
  for (const bad of BAD)
    it(`refuses a malformed file: ${bad.name}`, async () => {
      await withTempDir(async (dir) => {
        const l = await layout(dir);
        const path = join(l.cwd, 'clouds.yaml');
        await writeFile(path, bad.yaml);
        const e = await rejects(loadCloud('c', opts(l)), bad.code, bad.line);
        if (bad.code === 'FERRY_CONFIG_INVALID') assert.ok(e.message.includes(path), e.message);
      });
    });

  it('builds the cloud from OS_* variables when no cloud is named', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(join(l.cwd, 'clouds.yaml'), BASIC);
      const env = {
        OS_AUTH_URL: 'https://keystone.example:5000/v3',
        OS_USERNAME: 'alice',
        OS_PASSWORD: SECRET,
        OS_PROJECT_NAME: 'web',
        OS_USER_DOMAIN_NAME: 'Users',
        OS_PROJECT_DOMAIN_ID: 'd2',
        OS_REGION_NAME: 'North',
        OS_INTERFACE: 'internal',
        OS_INSECURE: 'true',
        OS_UNRELATED: 'x',
      };
      const c = await loadCloud(undefined, opts(l, env));
      assert.equal(c.name, 'envvars');
      assert.equal(c.regionName, 'North');
      assert.equal(c.interface, 'internal');
      assert.equal(c.verify, false);
      if (c.authType !== 'password') assert.fail('not password auth');
      assert.deepEqual(c.auth.user, { name: 'alice', domain: { name: 'Users' } });
      assert.deepEqual(c.auth.project, { name: 'web', domain: { id: 'd2' } });
      assert.equal(c.auth.password, SECRET);
      // A named cloud (or OS_CLOUD) wins over the variables.
      assert.equal((await loadCloud('devstack', opts(l, env))).name, 'devstack');
      assert.equal(
        (await loadCloud(undefined, opts(l, { ...env, OS_CLOUD: 'devstack' }))).name,
        'devstack',
      );
      // Application credentials, and the variables checked like a file.
      const ac = await loadCloud(
        undefined,
        opts(l, {
          OS_AUTH_TYPE: 'v3applicationcredential',
          OS_AUTH_URL: 'http://k:5000',
          OS_APPLICATION_CREDENTIAL_ID: 'id7',
          OS_APPLICATION_CREDENTIAL_SECRET: SECRET,
        }),
      );
      assert.equal(ac.authType, 'v3applicationcredential');
      const bad = await rejects(
        loadCloud(undefined, opts(l, { OS_AUTH_URL: 'keystone', OS_PASSWORD: SECRET })),
        'FERRY_CONFIG_INVALID',
      );
      assert.equal(bad.details.line, null);
      assert.match(bad.message, /auth_url/);
      await rejects(
        loadCloud('envvars', opts(l, { OS_USERNAME: 'u', OS_PASSWORD: SECRET })),
        'FERRY_CONFIG_INVALID',
      );
    });
  });

  it('refuses a file over 1 MiB', async () => {
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(join(l.cwd, 'clouds.yaml'), `# ${'x'.repeat(1024 * 1024)}\nclouds: {}\n`);
      await rejects(loadCloud('c', opts(l)), 'FERRY_CONFIG_INVALID');
    });
  });
});

function target(yaml: string, other: readonly string[] = ['type', 'regions']) {
  const node = parseYamlTree(yaml, '/srv/ferry.yaml');
  assert.ok(node !== null);
  return parseOpenStackTarget(
    new MapReader('/srv/ferry.yaml', node, 'targets.os', 3, [...OPENSTACK_TARGET_KEYS, ...other]),
    '/srv',
  );
}

describe('an openstack target in ferry.yaml', () => {
  it('names a cloud of clouds.yaml, with overrides', async () => {
    const spec = target('type: openstack\ncloud: devstack\ninterface: internal\ncacert: ca.pem\n');
    assert.equal(spec.kind, 'named');
    if (spec.kind !== 'named') return;
    assert.equal(spec.cloud, 'devstack');
    assert.deepEqual(spec.overrides, { interface: 'internal', cacert: '/srv/ca.pem' });
    await withTempDir(async (dir) => {
      const l = await layout(dir);
      await writeFile(join(l.cwd, 'clouds.yaml'), BASIC);
      const c = await resolveCloudSpec(spec, opts(l));
      assert.equal(c.interface, 'internal');
      assert.equal(c.cacert, '/srv/ca.pem');
      assert.equal(c.regionName, 'RegionOne');
    });
  });

  it('gives the auth inline (clouds.yaml auth keys) or just an endpoint', () => {
    const a = target(
      `type: openstack\nauthType: v3applicationcredential\nauth:\n  auth_url: http://k:5000\n  application_credential_id: id1\n  application_credential_secret: ${SECRET}\n`,
    );
    assert.equal(a.kind, 'inline');
    if (a.kind === 'inline') assert.equal(a.cloud.authType, 'v3applicationcredential');
    const n = target('type: openstack\nendpoint: http://127.0.0.1:9292\n');
    assert.equal(n.kind, 'inline');
    if (n.kind === 'inline') {
      assert.equal(n.cloud.authType, 'none');
      assert.equal(n.cloud.imageEndpointOverride, 'http://127.0.0.1:9292');
    }
  });

  it('refuses unknown keys in auth and auth beside cloud; a target naming no cloud means $OS_CLOUD', () => {
    const refused = (yaml: string, line: number) => {
      try {
        target(yaml);
      } catch (error) {
        assert.ok(isFerryError(error, 'FERRY_CONFIG_INVALID'), String(error));
        assert.equal(error.details.line, line, error.message);
        assert.ok(!error.message.includes(SECRET));
        return;
      }
      assert.fail(`accepted: ${yaml}`);
    };
    refused(
      `type: openstack\nauth:\n  auth_url: http://k\n  usrname: u\n  password: ${SECRET}\n`,
      4,
    );
    refused('type: openstack\ncloud: c\nauth: {token: t}\n', 3);
    assert.deepEqual(target('type: openstack\nregions: [a]\ninterface: internal\n'), {
      kind: 'named',
      cloud: null,
      overrides: { interface: 'internal' },
    });
    refused('type: openstack\nendpoint: not a url\n', 2);
    refused('type: openstack\nregion_name: r\nendpoint: http://k\n', 2);
  });
});
