/**
 * KMS over JSON 1.1 (X-Amz-Target: TrentService.ACTION): CreateKey,
 * DescribeKey, ListKeys, CreateAlias, ListAliases, GetKeyPolicy, PutKeyPolicy.
 */
import { AwsError } from './aws-error.js';
import type { KmsAlias, KmsKey, KmsKeys, KmsTag } from './kms-keys.js';
import type { CloudService } from './server.js';
import type { CloudRequest, CloudResponse } from './service.js';

type Input = Record<string, unknown>;
type Action = (request: CloudRequest, input: Input) => Promise<unknown>;

function validation(message: string): AwsError {
  return new AwsError(400, 'ValidationException', message);
}

function optionalString(input: Input, name: string, max: number): string | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw new AwsError(400, 'SerializationException', `${name} is not a string`);
  if (v.length > max)
    throw validation(
      `1 validation error detected: Value at '${name[0]!.toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must have length less than or equal to ${max}`,
    );
  return v;
}

function requiredString(input: Input, name: string, max: number): string {
  const v = optionalString(input, name, max);
  if (v === undefined || v === '')
    throw validation(
      `1 validation error detected: Value null at '${name[0]!.toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`,
    );
  return v;
}

/** Limit and Marker of a KMS list call: a page of `items`, the marker the next page starts after. */
function page<T>(
  items: readonly T[],
  input: Input,
  keyOf: (item: T) => string,
): { items: T[]; next?: string } {
  const limit = input.Limit ?? 50;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 100)
    throw validation(
      `1 validation error detected: Value '${String(limit)}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100`,
    );
  let start = 0;
  const marker = optionalString(input, 'Marker', 1024);
  if (marker !== undefined) {
    const after = Buffer.from(marker, 'base64url').toString('utf8');
    const at = items.findIndex((i) => keyOf(i) === after);
    if (!/^[A-Za-z0-9_-]+$/.test(marker) || at < 0)
      throw new AwsError(400, 'InvalidMarkerException', 'Invalid marker');
    start = at + 1;
  }
  const slice = items.slice(start, start + limit);
  const last = slice.at(-1);
  return start + limit < items.length && last !== undefined
    ? { items: slice, next: Buffer.from(keyOf(last), 'utf8').toString('base64url') }
    : { items: slice };
}

const seconds = (ms: number) => ms / 1000;

export function keyMetadata(key: KmsKey): Record<string, unknown> {
  return {
    AWSAccountId: key.account,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: seconds(key.created),
    Enabled: key.enabled,
    Description: key.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: key.enabled ? 'Enabled' : 'Disabled',
    Origin: 'AWS_KMS',
    KeyManager: key.keyManager,
    CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
    KeySpec: 'SYMMETRIC_DEFAULT',
    EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
    MultiRegion: false,
  };
}

function parseTags(value: unknown): KmsTag[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw new AwsError(400, 'SerializationException', 'Tags is not a list');
  return value.map((t: { TagKey?: unknown; TagValue?: unknown }) => {
    if (
      typeof t?.TagKey !== 'string' ||
      typeof t.TagValue !== 'string' ||
      t.TagKey === '' ||
      t.TagKey.length > 128 ||
      t.TagValue.length > 256
    )
      throw new AwsError(
        400,
        'TagException',
        'Each tag needs a TagKey (1 to 128 characters) and a TagValue (up to 256)',
      );
    return { TagKey: t.TagKey, TagValue: t.TagValue };
  });
}

export function kmsService(keys: KmsKeys): CloudService {
  /** A key of the caller's own account (key policies are not managed across accounts). */
  const ownKey = async (r: CloudRequest, input: Input, action: string): Promise<KmsKey> => {
    const name = optionalString(input, 'PolicyName', 128);
    if (name !== undefined && name !== 'default')
      throw new AwsError(400, 'NotFoundException', `Policy ${name} does not exist`);
    const key = await keys.resolve(
      r.account,
      r.region,
      requiredString(input, 'KeyId', 2048),
      action,
      r.principal,
    );
    if (key.account !== r.account)
      throw new AwsError(
        400,
        'AccessDeniedException',
        `User: ${r.principal} is not authorized to perform: ${action} on resource: ${key.arn}`,
      );
    return key;
  };
  const actions: Record<string, Action> = {
    CreateKey: async (r, input) => {
      for (const [name, allowed] of [
        ['KeyUsage', 'ENCRYPT_DECRYPT'],
        ['KeySpec', 'SYMMETRIC_DEFAULT'],
        ['CustomerMasterKeySpec', 'SYMMETRIC_DEFAULT'],
        ['Origin', 'AWS_KMS'],
      ] as const) {
        const v = optionalString(input, name, 64);
        if (v !== undefined && v !== allowed)
          throw new AwsError(
            400,
            'UnsupportedOperationException',
            `ferry cloud makes only ${name} ${allowed} keys, not ${v}`,
          );
      }
      if (input.MultiRegion === true)
        throw new AwsError(
          400,
          'UnsupportedOperationException',
          'ferry cloud makes no multi-Region keys',
        );
      const description = optionalString(input, 'Description', 8192);
      const policy = optionalString(input, 'Policy', 32768);
      const key = await keys.createKey(r.account, r.region, {
        ...(description === undefined ? {} : { description }),
        ...(policy === undefined ? {} : { policy }),
        tags: parseTags(input.Tags),
      });
      return { KeyMetadata: keyMetadata(key) };
    },
    DescribeKey: async (r, input) => {
      const ref = requiredString(input, 'KeyId', 2048);
      const key = await keys.resolve(r.account, r.region, ref, 'kms:DescribeKey', r.principal);
      return { KeyMetadata: keyMetadata(key) };
    },
    ListKeys: async (r, input) => {
      const all = await keys.keys(r.account, r.region);
      const { items, next } = page(all, input, (k) => k.keyId);
      return {
        Keys: items.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })),
        Truncated: next !== undefined,
        ...(next === undefined ? {} : { NextMarker: next }),
      };
    },
    CreateAlias: async (r, input) => {
      const name = requiredString(input, 'AliasName', 256);
      if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(name))
        throw validation(
          `1 validation error detected: Value '${name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$`,
        );
      if (name.startsWith('alias/aws/'))
        throw new AwsError(
          400,
          'NotAuthorizedException',
          "Cannot create alias with prefix 'alias/aws/'",
        );
      const target = await keys.resolve(
        r.account,
        r.region,
        requiredString(input, 'TargetKeyId', 2048),
        'kms:CreateAlias',
        r.principal,
      );
      if (
        target.account !== r.account ||
        target.region !== r.region ||
        target.keyManager !== 'CUSTOMER'
      )
        throw new AwsError(400, 'NotFoundException', `Key '${target.arn}' does not exist`);
      await keys.createAlias(r.account, r.region, name, target);
      return {};
    },
    GetKeyPolicy: async (r, input) => {
      const key = await ownKey(r, input, 'kms:GetKeyPolicy');
      return { Policy: key.policy, PolicyName: 'default' };
    },
    PutKeyPolicy: async (r, input) => {
      const key = await ownKey(r, input, 'kms:PutKeyPolicy');
      await keys.putPolicy(key, requiredString(input, 'Policy', 32768));
      return {};
    },
    ListAliases: async (r, input) => {
      let all = await keys.aliases(r.account, r.region);
      const keyRef = optionalString(input, 'KeyId', 2048);
      if (keyRef !== undefined) {
        const key = await keys.resolve(r.account, r.region, keyRef, 'kms:ListAliases', r.principal);
        all = all.filter((a) => a.targetKeyId === key.keyId);
      }
      const { items, next } = page(all, input, (a) => a.name);
      return {
        Aliases: items.map((a) => ({
          AliasName: a.name,
          AliasArn: a.arn,
          ...(a.targetKeyId === undefined
            ? {}
            : {
                TargetKeyId: a.targetKeyId,
                CreationDate: seconds((a as KmsAlias).created),
                LastUpdatedDate: seconds((a as KmsAlias).updated),
              }),
        })),
        Truncated: next !== undefined,
        ...(next === undefined ? {} : { NextMarker: next }),
      };
    },
  };
  return {
    name: 'kms',
    protocol: 'json',
    maxBodyBytes: 1024 * 1024,
    handler: async (request): Promise<CloudResponse> => {
      const target = String(request.headers['x-amz-target'] ?? '');
      const action = target.startsWith('TrentService.') ? target.slice(13) : '';
      const run = Object.hasOwn(actions, action) ? actions[action] : undefined;
      if (run === undefined || request.method !== 'POST')
        throw new AwsError(400, 'UnknownOperationException', `Unknown operation ${target}`);
      let input: unknown;
      try {
        input = request.body.length === 0 ? {} : JSON.parse(request.body.toString('utf8'));
      } catch {
        throw new AwsError(400, 'SerializationException', 'The request body is not JSON');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input))
        throw new AwsError(400, 'SerializationException', 'The request body is not a JSON object');
      const output = await run(request, input as Input);
      return {
        status: 200,
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': request.requestId,
        },
        body: Buffer.from(JSON.stringify(output)),
      };
    },
  };
}
