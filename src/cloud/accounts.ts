/**
 * The accounts of the local cloud and their credentials: the default account
 * 000000000000 (access key and secret both "test") unless the config turns it
 * off, and the accounts of DATA/config.json with their roles.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import type { EbsOperation, RateLimit, RateLimits } from './ebs/rate-limiter.js';

export const DEFAULT_ACCOUNT = '000000000000';
export const DEFAULT_ACCESS_KEY = 'test';
export const DEFAULT_SECRET = 'test';
export const CONFIG_FILE = 'config.json';

/** The longest and shortest session a role hands out, as in IAM. */
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;

export interface RoleConfig {
  readonly name: string;
  /** Accounts whose principals may assume the role. */
  readonly trust: readonly string[];
  readonly maxSessionSeconds: number;
}

export interface AccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface AccountConfig {
  readonly id: string;
  readonly keys: readonly AccessKey[];
  readonly roles: readonly RoleConfig[];
}

export interface CloudConfig {
  /** Whether account 000000000000 answers to test/test. */
  readonly defaultCredentials: boolean;
  readonly accounts: readonly AccountConfig[];
  /** EBS direct quotas: per account and region, as AWS's are. */
  readonly ebs: EbsQuotaConfig;
}

export interface EbsQuotaConfig {
  /** Pending snapshots per account and region (AWS: 100). */
  readonly pendingSnapshotLimit?: number;
  /** Requests per second per account, region and operation; none unless configured. */
  readonly rateLimits?: RateLimits;
}

const EBS_OPERATIONS: readonly EbsOperation[] = [
  'StartSnapshot',
  'PutSnapshotBlock',
  'CompleteSnapshot',
  'ListSnapshotBlocks',
  'ListChangedBlocks',
  'GetSnapshotBlock',
];

function positive(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= max;
}

function parseEbsQuotas(raw: unknown, path: string): EbsQuotaConfig {
  if (raw === undefined) return {};
  if (!isObject(raw)) throw invalid(path, '"ebs" is not an object');
  onlyKeys(raw, ['pendingSnapshotLimit', 'rateLimits'], '"ebs"', path);
  const out: { pendingSnapshotLimit?: number; rateLimits?: RateLimits } = {};
  if (raw.pendingSnapshotLimit !== undefined) {
    if (!positive(raw.pendingSnapshotLimit, 1e6) || !Number.isInteger(raw.pendingSnapshotLimit))
      throw invalid(path, '"ebs.pendingSnapshotLimit" is not a whole number from 1 to 1000000');
    out.pendingSnapshotLimit = raw.pendingSnapshotLimit;
  }
  if (raw.rateLimits !== undefined) {
    const limits = raw.rateLimits;
    if (!isObject(limits)) throw invalid(path, '"ebs.rateLimits" is not an object');
    onlyKeys(limits, EBS_OPERATIONS, '"ebs.rateLimits"', path);
    const parsed: Partial<Record<EbsOperation, RateLimit>> = {};
    for (const op of EBS_OPERATIONS) {
      const l = limits[op];
      if (l === undefined) continue;
      const where = `"ebs.rateLimits.${op}"`;
      if (!isObject(l)) throw invalid(path, `${where} is not an object`);
      onlyKeys(l, ['perSecond', 'burst'], where, path);
      if (!positive(l.perSecond, 1e6))
        throw invalid(path, `${where}.perSecond is not a number above 0 (at most 1000000)`);
      if (l.burst !== undefined && !(positive(l.burst, 1e6) && Number.isInteger(l.burst)))
        throw invalid(path, `${where}.burst is not a whole number from 1 to 1000000`);
      parsed[op] =
        l.burst === undefined
          ? { perSecond: l.perSecond }
          : { perSecond: l.perSecond, burst: l.burst };
    }
    out.rateLimits = parsed;
  }
  return out;
}

const ACCOUNT_ID = /^\d{12}$/;
const ACCESS_KEY_ID = /^[A-Za-z0-9]{4,128}$/;
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;

function invalid(path: string, reason: string): FerryError {
  return new FerryError('FERRY_CLOUD_CONFIG_INVALID', `Cannot read ${path}: ${reason}`, {
    details: { path },
    hint: 'see docs/cloud.md for the format of the accounts config',
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(
  o: Record<string, unknown>,
  allowed: readonly string[],
  where: string,
  path: string,
): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw invalid(path, `${where} has an unknown key "${k}"`);
  }
}

/** Validates the text of a config file; `path` names it in errors. */
export function parseCloudConfig(text: string, path: string): CloudConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw invalid(path, `not JSON (${(error as Error).message})`);
  }
  if (!isObject(raw)) throw invalid(path, 'the top level is not an object');
  onlyKeys(raw, ['defaultCredentials', 'accounts', 'ebs'], 'the top level', path);
  const ebs = parseEbsQuotas(raw.ebs, path);
  const defaultCredentials = raw.defaultCredentials ?? true;
  if (typeof defaultCredentials !== 'boolean')
    throw invalid(path, '"defaultCredentials" is not true or false');
  const list = raw.accounts ?? [];
  if (!Array.isArray(list)) throw invalid(path, '"accounts" is not an array');
  const accounts = list.map((a, i) => parseAccount(a, `accounts[${i}]`, path));
  const ids = new Set<string>();
  const keyIds = new Set<string>(defaultCredentials ? [DEFAULT_ACCESS_KEY] : []);
  for (const a of accounts) {
    if (ids.has(a.id)) throw invalid(path, `account ${a.id} is listed twice`);
    ids.add(a.id);
    for (const k of a.keys) {
      if (keyIds.has(k.accessKeyId))
        throw invalid(path, `access key ${k.accessKeyId} is used twice`);
      keyIds.add(k.accessKeyId);
    }
  }
  const known = new Set(ids);
  if (defaultCredentials) known.add(DEFAULT_ACCOUNT);
  for (const a of accounts) {
    for (const r of a.roles) {
      for (const t of r.trust) {
        if (!known.has(t))
          throw invalid(
            path,
            `role ${r.name} of account ${a.id} trusts ${t}, which is not configured`,
          );
      }
    }
  }
  return { defaultCredentials, accounts, ebs };
}

function parseAccount(a: unknown, where: string, path: string): AccountConfig {
  if (!isObject(a)) throw invalid(path, `${where} is not an object`);
  onlyKeys(a, ['id', 'accessKeyId', 'secretAccessKey', 'roles'], where, path);
  if (typeof a.id !== 'string' || !ACCOUNT_ID.test(a.id))
    throw invalid(path, `${where}.id is not a 12-digit account id`);
  const keys: AccessKey[] = [];
  if (a.accessKeyId !== undefined || a.secretAccessKey !== undefined) {
    if (typeof a.accessKeyId !== 'string' || !ACCESS_KEY_ID.test(a.accessKeyId))
      throw invalid(path, `${where}.accessKeyId is not 4 to 128 letters and digits`);
    if (typeof a.secretAccessKey !== 'string' || a.secretAccessKey.length === 0)
      throw invalid(path, `${where}.secretAccessKey is missing or empty`);
    if (a.accessKeyId.startsWith('ASIA'))
      throw invalid(path, `${where}.accessKeyId starts with ASIA, kept for temporary credentials`);
    keys.push({ accessKeyId: a.accessKeyId, secretAccessKey: a.secretAccessKey });
  }
  const roleList = a.roles ?? [];
  if (!Array.isArray(roleList)) throw invalid(path, `${where}.roles is not an array`);
  const names = new Set<string>();
  const roles = roleList.map((r, j): RoleConfig => {
    const at = `${where}.roles[${j}]`;
    if (!isObject(r)) throw invalid(path, `${at} is not an object`);
    onlyKeys(r, ['name', 'trust', 'maxSessionSeconds'], at, path);
    if (typeof r.name !== 'string' || !ROLE_NAME.test(r.name))
      throw invalid(path, `${at}.name is not a role name (1 to 64 of letters, digits, +=,.@_-)`);
    if (names.has(r.name)) throw invalid(path, `${at}.name ${r.name} is used twice`);
    names.add(r.name);
    const trust = r.trust;
    if (!Array.isArray(trust) || trust.some((t) => typeof t !== 'string' || !ACCOUNT_ID.test(t)))
      throw invalid(path, `${at}.trust is not an array of 12-digit account ids`);
    const max = r.maxSessionSeconds ?? 3600;
    if (
      typeof max !== 'number' ||
      !Number.isInteger(max) ||
      max < 3600 ||
      max > MAX_SESSION_SECONDS
    )
      throw invalid(path, `${at}.maxSessionSeconds is not a whole number from 3600 to 43200`);
    return { name: r.name, trust: trust as string[], maxSessionSeconds: max };
  });
  return { id: a.id, keys, roles };
}

/** Reads DATA/config.json; a missing file is the default configuration. */
export async function loadCloudConfig(dataDir: string): Promise<CloudConfig> {
  const path = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { defaultCredentials: true, accounts: [], ebs: {} };
    throw new FerryError('FERRY_IO', `Cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseCloudConfig(text, path);
}

/** A long-term key and the account it belongs to. */
export interface AccountKey extends AccessKey {
  readonly account: string;
}

/** The configured accounts, looked up by access key or id. */
export class Accounts {
  readonly defaultCredentials: boolean;
  private readonly keys = new Map<string, AccountKey>();
  private readonly accounts = new Map<string, AccountConfig>();

  constructor(config: CloudConfig) {
    this.defaultCredentials = config.defaultCredentials;
    if (config.defaultCredentials) {
      this.accounts.set(DEFAULT_ACCOUNT, { id: DEFAULT_ACCOUNT, keys: [], roles: [] });
      this.keys.set(DEFAULT_ACCESS_KEY, {
        accessKeyId: DEFAULT_ACCESS_KEY,
        secretAccessKey: DEFAULT_SECRET,
        account: DEFAULT_ACCOUNT,
      });
    }
    for (const a of config.accounts) {
      this.accounts.set(a.id, a);
      for (const k of a.keys) this.keys.set(k.accessKeyId, { ...k, account: a.id });
    }
  }

  byAccessKey(accessKeyId: string): AccountKey | undefined {
    return this.keys.get(accessKeyId);
  }

  has(account: string): boolean {
    return this.accounts.has(account);
  }

  ids(): string[] {
    return [...this.accounts.keys()].sort();
  }

  role(account: string, name: string): RoleConfig | undefined {
    return this.accounts.get(account)?.roles.find((r) => r.name === name);
  }
}
