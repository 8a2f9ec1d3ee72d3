/**
 * The real Keystone the OpenStack auth tests share, started on loopback by
 * scripts/keystone.sh (parallel test files take turns starting it;
 * $FERRY_KEYSTONE_PORT and $FERRY_KEYSTONE_DIR pick another instance), and
 * what a test needs to set up in it through Keystone's own API: projects,
 * users, role assignments, application credentials, image endpoints.
 *
 * The catalog is shared by every test file: tests make their own regions
 * (unique names) and ask for them by name.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const haveKeystone =
  spawnSync('/usr/bin/python3', ['-c', 'import keystone.server.wsgi'], { stdio: 'ignore' })
    .status === 0 && spawnSync('sh', ['-c', 'command -v flock && command -v curl']).status === 0;
export const keystoneSkip = haveKeystone
  ? false
  : 'Keystone (python3-keystone), flock or curl not installed';

const SCRIPT = fileURLToPath(new URL('../../../scripts/keystone.sh', import.meta.url));

export const ADMIN = {
  username: 'admin',
  password: process.env.FERRY_KEYSTONE_ADMIN_PASSWORD ?? 'ferry-admin',
  projectName: 'admin',
  domainId: 'default',
} as const;

export interface TestUser {
  readonly id: string;
  readonly name: string;
  readonly password: string;
}

export interface AppCredential {
  readonly id: string;
  readonly name: string;
  readonly secret: string;
}

export interface ImageEndpointSpec {
  readonly region: string;
  readonly interface: 'public' | 'internal' | 'admin';
  readonly url: string;
}

export interface Keystone {
  /** e.g. http://127.0.0.1:15000 */
  readonly url: string;
  /** `${url}/v3`, the auth_url. */
  readonly authUrl: string;
  /** A project-scoped token of the admin user. */
  adminToken(): Promise<string>;
  /** A password-authenticated token (scoped to `projectId` when given) and its project id. */
  passwordToken(
    user: { id: string; password: string },
    projectId?: string,
  ): Promise<{ token: string; projectId: string | null }>;
  createProject(name?: string): Promise<{ id: string; name: string }>;
  createUser(options?: { name?: string; password?: string; projectId?: string }): Promise<TestUser>;
  assignRole(userId: string, projectId: string, role?: string): Promise<void>;
  /** Made by the user itself (Keystone's policy), in the project of its token. */
  createAppCredential(user: TestUser, projectId: string, name?: string): Promise<AppCredential>;
  /** Adds the endpoints (and their regions) to an image service; returns the endpoint ids. */
  addImageEndpoints(specs: readonly ImageEndpointSpec[]): Promise<string[]>;
  deleteEndpoints(ids: readonly string[]): Promise<void>;
}

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

interface Call {
  readonly method: string;
  readonly path: string;
  readonly token?: string;
  readonly body?: unknown;
}

export function startKeystone(): Keystone {
  const url = execFileSync('bash', [SCRIPT, 'start'], { encoding: 'utf8' }).trim();
  const authUrl = `${url}/v3`;
  let admin: string | null = null;

  const call = async (c: Call): Promise<{ status: number; headers: Headers; json: unknown }> => {
    const res = await fetch(`${authUrl}${c.path}`, {
      method: c.method,
      headers: {
        Accept: 'application/json',
        ...(c.body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(c.token === undefined ? {} : { 'X-Auth-Token': c.token }),
      },
      ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
    });
    const text = await res.text();
    const json: unknown = text === '' ? null : JSON.parse(text);
    if (res.status >= 300)
      throw new Error(`keystone ${c.method} ${c.path}: ${res.status} ${text.slice(0, 300)}`);
    return { status: res.status, headers: res.headers, json };
  };

  const tokenRequest = async (auth: unknown) => {
    const r = await call({ method: 'POST', path: '/auth/tokens', body: { auth } });
    const token = r.headers.get('x-subject-token');
    if (token === null) throw new Error('keystone: no X-Subject-Token');
    const project = (r.json as { token: { project?: { id: string } } }).token.project;
    return { token, projectId: project?.id ?? null };
  };

  const adminToken = async () => {
    if (admin === null)
      admin = (
        await tokenRequest({
          identity: {
            methods: ['password'],
            password: {
              user: {
                name: ADMIN.username,
                domain: { id: ADMIN.domainId },
                password: ADMIN.password,
              },
            },
          },
          scope: { project: { name: ADMIN.projectName, domain: { id: ADMIN.domainId } } },
        })
      ).token;
    return admin;
  };

  const roleId = async (name: string): Promise<string> => {
    const r = await call({ method: 'GET', path: `/roles?name=${name}`, token: await adminToken() });
    const role = (r.json as { roles: { id: string }[] }).roles[0];
    if (role === undefined) throw new Error(`keystone: no role ${name}`);
    return role.id;
  };

  const imageServiceId = async (): Promise<string> => {
    const token = await adminToken();
    const r = await call({ method: 'GET', path: '/services?type=image', token });
    const existing = (r.json as { services: { id: string }[] }).services[0];
    if (existing !== undefined) return existing.id;
    const made = await call({
      method: 'POST',
      path: '/services',
      token,
      body: { service: { type: 'image', name: 'glance', enabled: true } },
    });
    return (made.json as { service: { id: string } }).service.id;
  };

  return {
    url,
    authUrl,
    adminToken,
    async passwordToken(user, projectId) {
      return tokenRequest({
        identity: {
          methods: ['password'],
          password: { user: { id: user.id, password: user.password } },
        },
        ...(projectId === undefined ? {} : { scope: { project: { id: projectId } } }),
      });
    },
    async createProject(name = unique('proj')) {
      const r = await call({
        method: 'POST',
        path: '/projects',
        token: await adminToken(),
        body: { project: { name, domain_id: 'default', enabled: true } },
      });
      return { id: (r.json as { project: { id: string } }).project.id, name };
    },
    async createUser(options = {}) {
      const name = options.name ?? unique('user');
      const password = options.password ?? randomBytes(12).toString('base64url');
      const r = await call({
        method: 'POST',
        path: '/users',
        token: await adminToken(),
        body: {
          user: {
            name,
            password,
            domain_id: 'default',
            enabled: true,
            ...(options.projectId === undefined ? {} : { default_project_id: options.projectId }),
          },
        },
      });
      return { id: (r.json as { user: { id: string } }).user.id, name, password };
    },
    async assignRole(userId, projectId, role = 'member') {
      const id = await roleId(role);
      await call({
        method: 'PUT',
        path: `/projects/${projectId}/users/${userId}/roles/${id}`,
        token: await adminToken(),
      });
    },
    async createAppCredential(user, projectId, name = unique('appcred')) {
      const { token } = await this.passwordToken(user, projectId);
      const r = await call({
        method: 'POST',
        path: `/users/${user.id}/application_credentials`,
        token,
        body: { application_credential: { name } },
      });
      const c = (r.json as { application_credential: { id: string; secret: string } })
        .application_credential;
      return { id: c.id, name, secret: c.secret };
    },
    async addImageEndpoints(specs) {
      const token = await adminToken();
      const serviceId = await imageServiceId();
      const ids: string[] = [];
      for (const region of new Set(specs.map((s) => s.region))) {
        try {
          await call({ method: 'POST', path: '/regions', token, body: { region: { id: region } } });
        } catch (error) {
          if (!String(error).includes(' 409 ')) throw error;
        }
      }
      for (const s of specs) {
        const r = await call({
          method: 'POST',
          path: '/endpoints',
          token,
          body: {
            endpoint: {
              service_id: serviceId,
              interface: s.interface,
              region_id: s.region,
              url: s.url,
              enabled: true,
            },
          },
        });
        ids.push((r.json as { endpoint: { id: string } }).endpoint.id);
      }
      return ids;
    },
    async deleteEndpoints(ids) {
      const token = await adminToken();
      for (const id of ids) await call({ method: 'DELETE', path: `/endpoints/${id}`, token });
    },
  };
}
