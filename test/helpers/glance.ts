/**
 * The real Glance the Glance tests share: Debian's python3-glance on
 * loopback, started by scripts/glance.sh (parallel test files take turns on
 * its lock; $FERRY_GLANCE_PORT and $FERRY_GLANCE_DIR pick another instance).
 * Without Keystone, the identity comes from X-Ferry-Test-* headers
 * (scripts/glance/ferry_glance_identity.py), so a test acts as any project
 * with any roles.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  GlanceClient,
  type GlanceClientOptions,
} from '../../src/publish/openstack/glance-client.js';
import { unauthenticatedSession } from '../../src/publish/openstack/image-session.js';

export const haveGlance =
  spawnSync('/usr/bin/python3', [
    '-c',
    'import importlib.util as u, sys; sys.exit(u.find_spec("glance") is None)',
  ]).status === 0 && spawnSync('sh', ['-c', 'command -v flock && command -v curl']).status === 0;
export const glanceSkip = haveGlance
  ? false
  : 'python3-glance (or flock, curl) not installed; scripts/setup.sh installs it';

const SCRIPT = fileURLToPath(new URL('../../../scripts/glance.sh', import.meta.url));

/** The project the identity filter uses when a test names none. */
export const DEFAULT_PROJECT = '6c2a1e0f9b6a4c4f8b7e1d2c3a4b5c6d';

export interface Identity {
  readonly project?: string;
  readonly roles?: readonly string[];
}

export interface TestGlance {
  readonly url: string;
  /** Headers that make Glance see `as`. */
  headers(as?: Identity): Record<string, string>;
  /** A client acting as `as` (default: the default project, member and reader), optionally through another URL (a proxy). */
  client(
    as?: Identity,
    options?: Partial<GlanceClientOptions> & { readonly url?: string },
  ): GlanceClient;
}

/** A fresh project id (Glance takes any string; UUID-like as Keystone's). */
export function newProject(): string {
  return randomUUID().replace(/-/g, '');
}

export const ADMIN: Identity = { roles: ['admin', 'member', 'reader'] };

export function startGlance(): TestGlance {
  const url = execFileSync('bash', [SCRIPT, 'start'], { encoding: 'utf8' }).trim();
  const headers = (as: Identity = {}) => ({
    'X-Ferry-Test-Project': as.project ?? DEFAULT_PROJECT,
    'X-Ferry-Test-Roles': (as.roles ?? ['member', 'reader']).join(','),
  });
  return {
    url,
    headers,
    client(as = {}, options = {}) {
      const { url: through, ...rest } = options;
      return new GlanceClient({
        session: unauthenticatedSession(through ?? url),
        headers: headers(as),
        retry: { maxAttempts: 3, baseMs: 50, capMs: 500 },
        ...rest,
      });
    },
  };
}
