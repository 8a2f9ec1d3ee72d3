/**
 * Keystone v3 auth against a real Keystone on loopback (scripts/keystone.sh):
 * password, application credential and token auth; the image endpoint found
 * by region and interface in the real catalog; a wrong password or secret
 * refused with FERRY_OPENSTACK_AUTH; re-auth after invalidate() and shortly
 * before the token expires. Keystone itself checks every token the session
 * hands out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FerryError, isFerryError } from '../../src/errors/index.js';
import type { ImageSession } from '../../src/publish/openstack/image-session.js';
import { openImageSession, openKeystoneAuth } from '../../src/publish/openstack/keystone-auth.js';
import type { OpenStackCloud } from '../../src/publish/openstack/openstack-cloud.js';
import {
  type AppCredential,
  type Keystone,
  keystoneSkip,
  startKeystone,
  type TestUser,
  unique,
} from '../helpers/keystone.js';

async function rejects(p: Promise<unknown>, code: string, secret?: string): Promise<FerryError> {
  let caught: unknown;
  try {
    await p;
  } catch (error) {
    caught = error;
  }
  assert.ok(isFerryError(caught), `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (secret !== undefined) {
    assert.ok(!caught.message.includes(secret), 'the secret is in the message');
    assert.ok(!JSON.stringify(caught.details).includes(secret), 'the secret is in the details');
    assert.ok(!(caught.hint ?? '').includes(secret), 'the secret is in the hint');
  }
  return caught;
}

describe('Keystone auth against a real Keystone', { skip: keystoneSkip, timeout: 240_000 }, () => {
  let ks: Keystone;
  let project: { id: string; name: string };
  let user: TestUser;
  let appCred: AppCredential;
  let endpointIds: string[] = [];
  const r1 = unique('region');
  const r2 = unique('region');

  before(async () => {
    ks = startKeystone();
    project = await ks.createProject();
    user = await ks.createUser();
    await ks.assignRole(user.id, project.id, 'member');
    appCred = await ks.createAppCredential(user, project.id);
    endpointIds = await ks.addImageEndpoints([
      { region: r1, interface: 'public', url: 'http://127.0.0.1:9292' },
      { region: r1, interface: 'internal', url: 'http://127.0.0.11:9292/v2/' },
      { region: r2, interface: 'public', url: 'http://127.0.0.12:9292/' },
    ]);
  });

  after(async () => {
    if (endpointIds.length > 0) await ks.deleteEndpoints(endpointIds);
  });

  const password = (over: Partial<{ password: string; byId: boolean }> = {}): OpenStackCloud => ({
    name: 'test',
    authType: 'password',
    interface: 'public',
    verify: true,
    regionName: r1,
    auth: {
      authUrl: ks.authUrl,
      user: over.byId ? { id: user.id } : { name: user.name, domain: { id: 'default' } },
      password: over.password ?? user.password,
      project: over.byId ? { id: project.id } : { name: project.name, domain: { name: 'Default' } },
    },
  });

  /** Keystone's own check of a token: the project it is scoped to. */
  async function validate(token: string | null): Promise<string> {
    assert.ok(token !== null && token.length > 0);
    const res = await fetch(`${ks.authUrl}/auth/tokens`, {
      headers: { 'X-Auth-Token': await ks.adminToken(), 'X-Subject-Token': token },
    });
    assert.equal(res.status, 200, `Keystone does not accept the token (${res.status})`);
    const body = (await res.json()) as { token: { project?: { id: string } } };
    return body.token.project?.id ?? '';
  }

  it('authenticates with a password (names and domains), finds the endpoint, hands out a real token', async () => {
    const s = await openImageSession(password());
    assert.equal(s.imageUrl, 'http://127.0.0.1:9292');
    assert.equal(s.projectId, project.id);
    assert.equal(await validate(await s.token()), project.id);
  });

  it('authenticates with a password by user id and project id', async () => {
    const s = await openImageSession(password({ byId: true }));
    assert.equal(s.projectId, project.id);
    assert.equal(await validate(await s.token()), project.id);
  });

  it('picks the endpoint by region and interface, without the version path', async () => {
    const cloud = password({ byId: true });
    assert.equal(
      (await openImageSession(cloud, { interface: 'internal' })).imageUrl,
      'http://127.0.0.11:9292',
    );
    assert.equal(
      (await openImageSession(cloud, { region: r2 })).imageUrl,
      'http://127.0.0.12:9292',
    );
  });

  it('refuses a missing region, a missing interface, and several regions with none named, listing the catalog', async () => {
    const cloud = password({ byId: true });
    const noRegion = await rejects(
      openImageSession(cloud, { region: 'nowhere' }),
      'FERRY_OPENSTACK_NO_ENDPOINT',
    );
    assert.ok(noRegion.message.includes(`${r1} public`), noRegion.message);
    assert.ok(noRegion.message.includes(`${r2} public`), noRegion.message);
    const noInterface = await rejects(
      openImageSession(cloud, { region: r2, interface: 'internal' }),
      'FERRY_OPENSTACK_NO_ENDPOINT',
    );
    assert.ok(noInterface.message.includes(`${r1} internal`), noInterface.message);
    const { regionName: _r, ...unnamed } = cloud;
    await rejects(openImageSession(unnamed as OpenStackCloud), 'FERRY_OPENSTACK_NO_ENDPOINT');
  });

  it('refuses a wrong password with FERRY_OPENSTACK_AUTH, naming the user and not the password', async () => {
    const wrong = 'wrong-password-1234';
    const e = await rejects(
      openImageSession(password({ password: wrong })),
      'FERRY_OPENSTACK_AUTH',
      wrong,
    );
    assert.ok(e.message.includes(user.name), e.message);
    assert.equal(e.details.status, 401);
  });

  it('authenticates with an application credential, by id and by name, scoped by the credential', async () => {
    const common = { name: null, interface: 'public', verify: true, regionName: r1 } as const;
    const byId = await openImageSession({
      ...common,
      authType: 'v3applicationcredential',
      auth: { authUrl: ks.authUrl, credential: { id: appCred.id }, secret: appCred.secret },
    });
    assert.equal(byId.projectId, project.id);
    assert.equal(byId.imageUrl, 'http://127.0.0.1:9292');
    assert.equal(await validate(await byId.token()), project.id);
    const byName = await openImageSession({
      ...common,
      authType: 'v3applicationcredential',
      auth: {
        authUrl: ks.authUrl,
        credential: { name: appCred.name, user: { name: user.name, domain: { id: 'default' } } },
        secret: appCred.secret,
      },
    });
    assert.equal(byName.projectId, project.id);
    // bcrypt reads only the first 72 bytes of the (86-character) secret.
    const wrong = `zzzz${appCred.secret.slice(4)}`;
    const e = await rejects(
      openImageSession({
        ...common,
        authType: 'v3applicationcredential',
        auth: { authUrl: ks.authUrl, credential: { id: appCred.id }, secret: wrong },
      }),
      'FERRY_OPENSTACK_AUTH',
      wrong,
    );
    assert.ok(e.message.includes(appCred.id), e.message);
  });

  it('authenticates with a token, and refuses a bogus one', async () => {
    const { token } = await ks.passwordToken(user, project.id);
    const cloud: OpenStackCloud = {
      name: null,
      interface: 'public',
      verify: true,
      regionName: r1,
      authType: 'token',
      auth: { authUrl: ks.authUrl, token, project: { id: project.id } },
    };
    const s = await openImageSession(cloud);
    assert.equal(s.projectId, project.id);
    assert.equal(await validate(await s.token()), project.id);
    const bogus = 'gAAAAABnot-a-real-token-at-all';
    await rejects(
      openImageSession({ ...cloud, auth: { ...cloud.auth, token: bogus } }),
      'FERRY_OPENSTACK_AUTH',
      bogus,
    );
  });

  it('keeps the token, gets a new one after invalidate() and shortly before expiry', async () => {
    let skew = 0;
    const s: ImageSession = await openImageSession(password({ byId: true }), {
      now: () => Date.now() + skew,
    });
    const t1 = await s.token();
    assert.equal(await s.token(), t1, 'a valid token is reused');
    s.invalidate();
    // Callers that ask at once share one new token.
    const [t2, t2b] = await Promise.all([s.token(), s.token()]);
    assert.notEqual(t2, t1);
    assert.equal(t2b, t2);
    assert.equal(await validate(t2), project.id);
    assert.equal(await s.token(), t2);
    // Keystone's tokens live an hour: 59 minutes on, the session renews first.
    skew = 59 * 60_000;
    const t3 = await s.token();
    assert.notEqual(t3, t2);
    assert.equal(await validate(t3), project.id);
    skew = 0;
    assert.equal(await s.token(), t3);
  });

  it('shares one token among the regions of a cloud', async () => {
    const cloud = password({ byId: true });
    if (cloud.authType === 'none') return;
    const auth = await openKeystoneAuth(cloud);
    const one = auth.imageSession({ region: r1 });
    const two = auth.imageSession({ region: r2 });
    assert.equal(one.imageUrl, 'http://127.0.0.1:9292');
    assert.equal(two.imageUrl, 'http://127.0.0.12:9292');
    const t = await one.token();
    assert.equal(await two.token(), t);
    two.invalidate();
    const t2 = await one.token();
    assert.notEqual(t2, t);
    assert.equal(await two.token(), t2);
    assert.equal(await validate(t2), project.id);
    assert.throws(
      () => auth.imageSession({ region: 'nowhere' }),
      (e: unknown) => isFerryError(e, 'FERRY_OPENSTACK_NO_ENDPOINT'),
    );
  });

  it('uses an explicit image endpoint with auth, skipping the catalog', async () => {
    const s = await openImageSession({
      ...password({ byId: true }),
      imageEndpointOverride: 'http://127.0.0.99:9292/v2',
    });
    assert.equal(s.imageUrl, 'http://127.0.0.99:9292');
    assert.equal(await validate(await s.token()), project.id);
  });

  it('refuses an unscoped token with no catalog', async () => {
    const loner = await ks.createUser();
    await rejects(
      openImageSession({
        name: null,
        interface: 'public',
        verify: true,
        authType: 'password',
        auth: { authUrl: ks.authUrl, user: { id: loner.id }, password: loner.password },
      }),
      'FERRY_OPENSTACK_NO_ENDPOINT',
    );
  });

  it('honours an aborted signal', async () => {
    await rejects(openImageSession(password(), { signal: AbortSignal.abort() }), 'FERRY_ABORTED');
  });

  it('says a wrong auth_url with a coded error', async () => {
    const cloud = password({ byId: true });
    if (cloud.authType !== 'password') return;
    await rejects(
      openImageSession({ ...cloud, auth: { ...cloud.auth, authUrl: `${ks.url}/nothing/v3` } }),
      'FERRY_KEYSTONE_RESPONSE',
      user.password,
    );
  });
});
