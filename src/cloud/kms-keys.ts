/**
 * KMS keys and aliases of one account and region, kept in its KMS document.
 * Every account and region has the AWS managed key behind alias/aws/ebs,
 * made on first use. A key is usable by its own account and by the accounts
 * its key policy allows (an AWS managed key only by its own account); the
 * EBS and EC2 services ask `canUse` before touching encrypted data.
 */
import { randomUUID } from 'node:crypto';
import { AwsError } from './aws-error.js';
import { isRegion } from './regions.js';
import type { StateStore } from './state-store.js';

export const EBS_DEFAULT_ALIAS = 'alias/aws/ebs';

export interface KmsTag {
  readonly TagKey: string;
  readonly TagValue: string;
}

export interface KmsKey {
  readonly keyId: string;
  readonly arn: string;
  readonly account: string;
  readonly region: string;
  /** Epoch milliseconds. */
  readonly created: number;
  readonly description: string;
  readonly keyManager: 'AWS' | 'CUSTOMER';
  readonly enabled: boolean;
  /** The key policy as given (or the default one). */
  readonly policy: string;
  /** Accounts the policy lets use the key ("*": any); the own account always can. */
  readonly allowedAccounts: readonly string[];
  readonly tags: readonly KmsTag[];
}

export interface KmsAlias {
  readonly name: string;
  readonly arn: string;
  readonly targetKeyId: string;
  readonly created: number;
  readonly updated: number;
}

interface KmsDoc {
  keys: KmsKey[];
  aliases: KmsAlias[];
}

const emptyDoc = (): KmsDoc => ({ keys: [], aliases: [] });

export function aliasArn(region: string, account: string, name: string): string {
  return `arn:aws:kms:${region}:${account}:${name}`;
}

function defaultPolicy(account: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Id: 'key-default-1',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${account}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  });
}

/** The accounts a key policy's Allow statements name as principals. */
export function policyAccounts(policy: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(policy);
  } catch {
    throw new AwsError(
      400,
      'MalformedPolicyDocumentException',
      'The key policy is not valid JSON.',
    );
  }
  const statements = (doc as { Statement?: unknown }).Statement;
  const list = Array.isArray(statements)
    ? statements
    : statements === undefined
      ? []
      : [statements];
  const accounts = new Set<string>();
  for (const s of list as Array<{ Effect?: unknown; Principal?: unknown }>) {
    if (s?.Effect !== 'Allow') continue;
    const p = s.Principal;
    const names =
      p === '*'
        ? ['*']
        : typeof p === 'object' && p !== null
          ? [(p as { AWS?: unknown }).AWS].flat()
          : [];
    for (const n of names) {
      if (n === '*') accounts.add('*');
      else if (typeof n === 'string') {
        const m = /^(?:arn:aws:iam::)?(\d{12})(?::.*)?$/.exec(n);
        if (m !== null) accounts.add(m[1]!);
      }
    }
  }
  return [...accounts].sort();
}

/** May `account` use `key` (encrypt, decrypt, share data under it)? */
export function canUse(key: KmsKey, account: string): boolean {
  if (key.account === account) return true;
  if (key.keyManager === 'AWS') return false;
  return key.allowedAccounts.includes(account) || key.allowedAccounts.includes('*');
}

export interface CreateKeyInput {
  readonly description?: string;
  readonly policy?: string;
  readonly tags?: readonly KmsTag[];
}

export class KmsKeys {
  private readonly state: StateStore;
  private readonly now: () => number;

  constructor(state: StateStore, now: () => number = Date.now) {
    this.state = state;
    this.now = now;
  }

  private read(account: string, region: string): Promise<Readonly<KmsDoc>> {
    return this.state.read(account, region, 'kms', emptyDoc);
  }

  async createKey(account: string, region: string, input: CreateKeyInput = {}): Promise<KmsKey> {
    const policy = input.policy ?? defaultPolicy(account);
    const allowed = policyAccounts(policy).filter((a) => a !== account);
    const keyId = randomUUID();
    const key: KmsKey = {
      keyId,
      arn: `arn:aws:kms:${region}:${account}:key/${keyId}`,
      account,
      region,
      created: this.now(),
      description: input.description ?? '',
      keyManager: 'CUSTOMER',
      enabled: true,
      policy,
      allowedAccounts: allowed,
      tags: input.tags ?? [],
    };
    await this.state.update(account, region, 'kms', emptyDoc, (doc) => {
      doc.keys.push(key);
    });
    return key;
  }

  /** The AWS managed key behind alias/aws/ebs, made when first asked for. */
  async defaultEbsKey(account: string, region: string): Promise<KmsKey> {
    const doc = await this.read(account, region);
    const existing = findByAlias(doc, EBS_DEFAULT_ALIAS);
    if (existing !== undefined) return existing;
    return this.state.update(account, region, 'kms', emptyDoc, (d) => {
      const again = findByAlias(d, EBS_DEFAULT_ALIAS);
      if (again !== undefined) return again;
      const keyId = randomUUID();
      const now = this.now();
      const key: KmsKey = {
        keyId,
        arn: `arn:aws:kms:${region}:${account}:key/${keyId}`,
        account,
        region,
        created: now,
        description: 'Default key that protects my EBS volumes when no other key is defined',
        keyManager: 'AWS',
        enabled: true,
        policy: defaultPolicy(account),
        allowedAccounts: [],
        tags: [],
      };
      d.keys.push(key);
      d.aliases.push({
        name: EBS_DEFAULT_ALIAS,
        arn: aliasArn(region, account, EBS_DEFAULT_ALIAS),
        targetKeyId: keyId,
        created: now,
        updated: now,
      });
      return key;
    });
  }

  /**
   * Finds a key by id, key ARN, alias name or alias ARN, for a caller of
   * `account` in `region`. Ids and alias names are the caller's own; an ARN
   * may name another account's key, which the caller must be allowed to use.
   * alias/aws/ebs is made on first use. Throws NotFoundException or
   * AccessDeniedException (with `action` in the message).
   */
  async resolve(
    account: string,
    region: string,
    ref: string,
    action: string,
    principal: string,
  ): Promise<KmsKey> {
    let owner = account;
    let keyRegion = region;
    let local = ref;
    const arn = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):((?:key|alias)\/.+)$/.exec(ref);
    if (arn !== null) {
      keyRegion = arn[1]!;
      owner = arn[2]!;
      local = arn[3]!;
      if (!isRegion(keyRegion)) throw new AwsError(400, 'NotFoundException', `Invalid arn ${ref}`);
    } else if (ref.startsWith('arn:')) {
      throw new AwsError(400, 'NotFoundException', `Invalid arn ${ref}`);
    }
    let key: KmsKey | undefined;
    if (local.startsWith('alias/')) {
      if (local === EBS_DEFAULT_ALIAS && owner === account)
        key = await this.defaultEbsKey(owner, keyRegion);
      else key = findByAlias(await this.readOrEmpty(owner, keyRegion), local);
      if (key === undefined)
        throw new AwsError(
          400,
          'NotFoundException',
          `Alias ${aliasArn(keyRegion, owner, local)} is not found.`,
        );
    } else {
      const id = local.startsWith('key/') ? local.slice(4) : local;
      key = (await this.readOrEmpty(owner, keyRegion)).keys.find((k) => k.keyId === id);
      if (key === undefined)
        throw new AwsError(
          400,
          'NotFoundException',
          `Key '${arn === null ? `arn:aws:kms:${region}:${account}:key/${id}` : ref}' does not exist`,
        );
    }
    if (!canUse(key, account))
      throw new AwsError(
        400,
        'AccessDeniedException',
        `User: ${principal} is not authorized to perform: ${action} on resource: ${key.arn} because no resource-based policy allows the ${action} action`,
      );
    return key;
  }

  private async readOrEmpty(account: string, region: string): Promise<Readonly<KmsDoc>> {
    if (!/^\d{12}$/.test(account) || !isRegion(region)) return emptyDoc();
    return this.read(account, region);
  }

  async keys(account: string, region: string): Promise<readonly KmsKey[]> {
    return (await this.read(account, region)).keys;
  }

  /**
   * The account's aliases in the region, sorted by name, with alias/aws/ebs
   * always among them (without a target until its key is made, as AWS lists
   * its predefined aliases).
   */
  async aliases(
    account: string,
    region: string,
  ): Promise<Array<Omit<KmsAlias, 'targetKeyId'> & { targetKeyId?: string }>> {
    const doc = await this.read(account, region);
    const list: Array<Omit<KmsAlias, 'targetKeyId'> & { targetKeyId?: string }> = [...doc.aliases];
    if (!list.some((a) => a.name === EBS_DEFAULT_ALIAS)) {
      list.push({
        name: EBS_DEFAULT_ALIAS,
        arn: aliasArn(region, account, EBS_DEFAULT_ALIAS),
        created: 0,
        updated: 0,
      });
    }
    return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Replaces a customer key's policy; the accounts its Allow statements name
   * may use the key from then on (an AWS managed key's policy is fixed).
   */
  async putPolicy(key: KmsKey, policy: string): Promise<KmsKey> {
    if (key.keyManager === 'AWS')
      throw new AwsError(
        400,
        'AccessDeniedException',
        `The key policy of the AWS managed key ${key.arn} cannot be changed`,
      );
    const allowed = policyAccounts(policy).filter((a) => a !== key.account);
    return this.state.update(key.account, key.region, 'kms', emptyDoc, (doc) => {
      const i = doc.keys.findIndex((k) => k.keyId === key.keyId);
      const current = doc.keys[i];
      if (current === undefined)
        throw new AwsError(400, 'NotFoundException', `Key '${key.arn}' does not exist`);
      const updated: KmsKey = { ...current, policy, allowedAccounts: allowed };
      doc.keys[i] = updated;
      return updated;
    });
  }

  async createAlias(account: string, region: string, name: string, target: KmsKey): Promise<void> {
    const now = this.now();
    await this.state.update(account, region, 'kms', emptyDoc, (doc) => {
      if (doc.aliases.some((a) => a.name === name))
        throw new AwsError(
          400,
          'AlreadyExistsException',
          `An alias with the name ${aliasArn(region, account, name)} already exists`,
        );
      doc.aliases.push({
        name,
        arn: aliasArn(region, account, name),
        targetKeyId: target.keyId,
        created: now,
        updated: now,
      });
    });
  }
}

function findByAlias(doc: Readonly<KmsDoc>, name: string): KmsKey | undefined {
  const alias = doc.aliases.find((a) => a.name === name);
  return alias === undefined ? undefined : doc.keys.find((k) => k.keyId === alias.targetKeyId);
}
