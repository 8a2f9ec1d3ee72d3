import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AwsTargetConfig,
  kmsKeyFor,
  parseConfig,
  type TargetConfig,
} from '../../src/config/index.js';
import { isFerryError } from '../../src/errors/index.js';

const PATH = '/srv/ferry/ferry.yaml';

const GOOD = `store: ./store
state: ./state
streams:
  web:
    source: ./rootfs
    layout: disk
    fs: ext4
    boot: grub
    firmware: both
    size: auto
  api:
    source: /abs/api.tar
    layout: fs
    fs: xfs
    boot: none
    size: 8G
targets:
  prod:
    type: aws
    method: ebs-direct
    endpoint: local
    credentials:
      profile: prod
    regions: [us-east-1, eu-west-1]
    encryption: {kmsKey: alias/ferry}
    shareWith: ['111122223333', 444455556666]
    tags: {team: platform}
    retention: {keep: 3}
    streams: [web]
  imports:
    type: aws
    method: vm-import
    endpoint: https://ec2.example.com:8443/
    credentials:
      roleArn: arn:aws:iam::111122223333:role/publisher
      externalId: ext-123
    regions: [us-west-2, eu-west-1]
    encryption: {kmsKeys: {us-west-2: alias/ferry, eu-west-1: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'}}
    bucket: ferry-import
  keys:
    type: aws
    credentials: {accessKeyId: AKIAEXAMPLE, secretAccessKey: s3cret, sessionToken: tok}
    regions: [ap-south-1]
    encryption: {kmsKey: alias/aws/ebs}
`;

/** The target as an AWS one (the test's file has only AWS targets where this is used). */
function awsTarget(t: TargetConfig | undefined): AwsTargetConfig | undefined {
  if (t !== undefined && t.type !== 'aws') throw new Error(`${t.name} is not an AWS target`);
  return t;
}

describe('publish: ferry.yaml schema', () => {
  it('reads streams and targets as docs/publish.md shows, with defaults and resolved paths', () => {
    const c = parseConfig(GOOD, PATH);
    assert.equal(c.store, '/srv/ferry/store');
    assert.equal(c.state, '/srv/ferry/state');
    assert.deepEqual(
      c.streams.map((s) => s.name),
      ['web', 'api'],
    );
    assert.deepEqual(c.streams[0], {
      name: 'web',
      source: '/srv/ferry/rootfs',
      layout: 'disk',
      fs: 'ext4',
      boot: 'grub',
      firmware: 'both',
      size: 'auto',
    });
    assert.deepEqual(c.streams[1], {
      name: 'api',
      source: '/abs/api.tar',
      layout: 'fs',
      fs: 'xfs',
      boot: 'none',
      size: 8 * 2 ** 30,
    });
    const [prod, imports, keys] = c.targets.map(awsTarget);
    assert.deepEqual(prod, {
      type: 'aws',
      name: 'prod',
      method: 'ebs-direct',
      endpoint: 'local',
      credentials: { kind: 'profile', profile: 'prod' },
      regions: ['us-east-1', 'eu-west-1'],
      encryption: {
        kind: 'kms',
        keyByRegion: { 'us-east-1': 'alias/ferry', 'eu-west-1': 'alias/ferry' },
      },
      shareWith: ['111122223333', '444455556666'],
      tags: { team: 'platform' },
      retention: { keep: 3 },
      streams: ['web'],
    });
    assert.equal(imports?.method, 'vm-import');
    assert.equal(imports?.bucket, 'ferry-import');
    assert.deepEqual(imports?.credentials, {
      kind: 'role',
      roleArn: 'arn:aws:iam::111122223333:role/publisher',
      externalId: 'ext-123',
    });
    assert.deepEqual(imports?.streams, ['web', 'api'], 'no streams: means all');
    assert.equal(imports && kmsKeyFor(imports.encryption, 'us-west-2'), 'alias/ferry');
    assert.match(imports ? (kmsKeyFor(imports.encryption, 'eu-west-1') ?? '') : '', /eu-west-1/);
    assert.deepEqual(keys?.credentials, {
      kind: 'static',
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 's3cret',
      sessionToken: 'tok',
    });
    assert.deepEqual(keys?.encryption, {
      kind: 'kms',
      keyByRegion: { 'ap-south-1': 'alias/aws/ebs' },
    });
    assert.deepEqual(keys?.tags, {});
    assert.equal(keys?.retention, undefined);
    assert.equal(keys?.method, 'ebs-direct');
  });

  it('defaults: state beside the file, no credentials is the default chain, no encryption is none', () => {
    const c = parseConfig('targets:\n  t:\n    type: aws\n    regions: [us-east-1]\n', PATH);
    assert.equal(c.state, join('/srv/ferry', '.ferry'));
    assert.equal(c.store, undefined);
    assert.deepEqual(awsTarget(c.targets[0])?.credentials, { kind: 'default' });
    assert.deepEqual(awsTarget(c.targets[0])?.encryption, { kind: 'none' });
    assert.deepEqual(c.targets[0]?.streams, []);
    assert.deepEqual(parseConfig('streams:\n  web:\n', PATH).streams, [
      { name: 'web', layout: 'disk', fs: 'ext4', boot: 'grub', size: 'auto' },
    ]);
    assert.deepEqual(parseConfig('', PATH), {
      path: PATH,
      state: '/srv/ferry/.ferry',
      streams: [],
      targets: [],
    });
  });

  const target = (body: string) => `streams:\n  web: {}\ntargets:\n  t:\n    type: aws\n${body}`;
  const regions = '    regions: [us-east-1]\n';
  const many = (n: number, f: (i: number) => string) =>
    Array.from({ length: n }, (_, i) => f(i)).join('');

  // [file, line, message pattern]
  const BAD: Array<[string, number, RegExp]> = [
    ['store: ./s\nstaet: ./x\n', 2, /unknown key "staet"/],
    ['state: [a]\n', 1, /state must be a directory/],
    ['streams:\n  web:\n    sourec: ./x\n', 3, /unknown key "sourec" in streams\.web/],
    ['streams:\n  web:\n    layout: iso\n', 3, /streams\.web\.layout must be one of fs, disk/],
    ['streams:\n  web:\n    fs: btrfs\n', 3, /fs must be one of ext4, xfs/],
    ['streams:\n  web:\n    boot: lilo\n', 3, /boot must be one of grub, extlinux, none/],
    ['streams:\n  web:\n\n    firmware: coreboot\n', 4, /firmware must be one of bios, uefi, both/],
    ['streams:\n  web:\n    size: huge\n', 3, /size must be auto or a size/],
    ['streams:\n  web:\n    size: 100T\n', 3, /up to 64T/],
    ['streams:\n  Web: {}\n', 2, /stream name "Web" must be lowercase/],
    ['streams:\n  -web: {}\n', 2, /stream name "-web"/],
    [`streams:\n  ${'a'.repeat(64)}: {}\n`, 2, /at most 63/],
    ['streams:\n  web: 3\n', 2, /streams\.web must be a mapping/],
    ['streams: [web]\n', 1, /streams must be a mapping/],
    [`streams:\n${many(65, (i) => `  s${i}: {}\n`)}`, 1, /at most 64/],
    ['targets:\n  t:\n    regions: [us-east-1]\n', 2, /targets\.t needs "type"/],
    ['targets:\n  t:\n    type: gcp\n', 3, /type must be aws or openstack/],
    [target(`${regions}    regoins: [x]\n`), 7, /unknown key "regoins" in targets\.t/],
    [target(''), 4, /targets\.t needs "regions"/],
    [target('    regions: []\n'), 6, /regions is empty/],
    [target('    regions: us-east-1\n'), 6, /regions must be a list/],
    [
      target('    regions:\n      - us-east-1\n      - us-north-9\n'),
      8,
      /us-north-9 is not an AWS region/,
    ],
    [target('    regions: [us-east-1, us-east-1]\n'), 6, /names us-east-1 twice/],
    [target(`    regions: [${many(33, () => 'us-east-1,')}]\n`), 6, /more than 32/],
    [target(`${regions}    method: snowball\n`), 7, /method must be one of ebs-direct, vm-import/],
    [target(`${regions}    method: vm-import\n`), 7, /vm-import needs "bucket"/],
    [target(`${regions}    bucket: b-ucket\n`), 7, /bucket is for method vm-import only/],
    [target(`${regions}    method: vm-import\n    bucket: Bad_Bucket\n`), 8, /S3 bucket name/],
    [target(`${regions}    endpoint: ftp://x\n`), 7, /endpoint must be local or an http\(s\) URL/],
    [target(`${regions}    endpoint: 'http://u:p@host/'\n`), 7, /no user or password/],
    [target(`${regions}    endpoint: remote\n`), 7, /endpoint must be local/],
    [target(`${regions}    encryption: aes\n`), 7, /encryption must be none, default/],
    [target(`${regions}    encryption: {kmsKey: nope}\n`), 7, /kmsKey must be a KMS key id/],
    [
      target(`${regions}    encryption:\n      kmsKey: alias/a\n      kmsKeys: {}\n`),
      7,
      /exactly one of kmsKey and kmsKeys/,
    ],
    [target(`${regions}    encryption:\n      kmsKeyz: alias/a\n`), 8, /unknown key "kmsKeyz"/],
    [
      target(
        '    regions: [us-east-1, eu-west-1]\n    encryption:\n      kmsKeys:\n        us-east-1: alias/a\n',
      ),
      8,
      /kmsKeys has no key for eu-west-1/,
    ],
    [
      target(
        `${regions}    encryption:\n      kmsKeys:\n        us-east-1: alias/a\n        eu-west-1: alias/b\n`,
      ),
      10,
      /eu-west-1 is not one of the target's regions/,
    ],
    [
      target(
        `${regions}    encryption:\n      kmsKeys:\n        us-east-1: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'\n`,
      ),
      9,
      /is a key of eu-west-1, not of us-east-1/,
    ],
    [
      target(
        '    regions: [us-east-1, eu-west-1]\n    encryption: {kmsKey: "arn:aws:kms:us-east-1:111122223333:alias/x"}\n',
      ),
      7,
      /use kmsKeys/,
    ],
    [target(`${regions}    shareWith: ['11112222333']\n`), 7, /shareWith\[0\] must be a 12-digit/],
    [
      target(`${regions}    shareWith:\n      - '111122223333'\n      - 12\n`),
      9,
      /shareWith\[1\] must be a 12-digit/,
    ],
    [target(`${regions}    shareWith: '111122223333'\n`), 7, /shareWith must be a list/],
    [
      target(`${regions}    shareWith: ['111122223333', 111122223333]\n`),
      7,
      /names an account twice/,
    ],
    [target(`${regions}    concurrency: 0\n`), 7, /concurrency/],
    [target(`${regions}    concurrency: 1000\n`), 7, /concurrency/],
    [target(`${regions}    stallMinutes: 5\n`), 7, /stallMinutes is for method vm-import only/],
    [
      target(`${regions}    encryption: default\n    shareWith: ['111122223333']\n`),
      8,
      /needs encryption with a KMS key/,
    ],
    [
      target(`${regions}    tags:\n      aws:cloudformation: x\n`),
      8,
      /aws: prefix is reserved by AWS/,
    ],
    [target(`${regions}    tags:\n      Ferry:stream: x\n`), 8, /ferry: prefix is reserved/],
    [target(`${regions}    tags:\n      team: 3\n`), 8, /tags\.team must be a string/],
    [target(`${regions}    tags:\n      ${'k'.repeat(129)}: v\n`), 8, /1 to 128 characters/],
    [target(`${regions}    tags:\n      team: ${'v'.repeat(257)}\n`), 8, /over 256 characters/],
    [target(`${regions}    tags:\n${many(46, (i) => `      k${i}: v\n`)}`), 7, /at most 45/],
    [target(`${regions}    retention: {keep: 0}\n`), 7, /keep must be a whole number from 1/],
    [target(`${regions}    retention: {keep: 1.5}\n`), 7, /keep must be a whole number/],
    [target(`${regions}    retention: {}\n`), 7, /retention needs "keep"/],
    [target(`${regions}    retention: {kept: 2}\n`), 7, /unknown key "kept"/],
    [target(`${regions}    streams: [web, db]\n`), 7, /no stream "db" is defined/],
    [target(`${regions}    streams: [web, web]\n`), 7, /names a stream twice/],
    [target(`${regions}    credentials: {}\n`), 7, /needs one of profile, roleArn/],
    [
      target(
        `${regions}    credentials:\n      profile: p\n      roleArn: arn:aws:iam::111122223333:role/r\n`,
      ),
      9,
      /"roleArn" does not go with a profile/,
    ],
    [
      target(
        `${regions}    credentials:\n      roleArn: arn:aws:iam::111122223333:role/r\n      accessKeyId: AKIA1234\n`,
      ),
      9,
      /"accessKeyId" does not go with roleArn/,
    ],
    [
      target(`${regions}    credentials:\n      roleArn: arn:aws:iam::1111:role/r\n`),
      8,
      /roleArn must be a role ARN/,
    ],
    [
      target(
        `${regions}    credentials:\n      roleArn: arn:aws:iam::111122223333:role/r\n      sessionName: 'a b'\n`,
      ),
      9,
      /sessionName must be/,
    ],
    [
      target(`${regions}    credentials:\n      accessKeyId: AKIA1234\n`),
      7,
      /needs both accessKeyId and secretAccessKey/,
    ],
    [
      target(`${regions}    credentials:\n      secretAccessKey: s\n      sessionToken: t\n`),
      7,
      /needs both accessKeyId/,
    ],
    [target(`${regions}    credentials:\n      externalId: e\n`), 7, /needs one of profile/],
    [
      target(`${regions}    credentials:\n      profle: p\n`),
      8,
      /unknown key "profle" in targets\.t\.credentials/,
    ],
    [target(`${regions}    credentials: default\n`), 7, /credentials must be a mapping/],
    [
      `targets:\n${many(65, (i) => `  t${i}: {type: aws, regions: [us-east-1]}\n`)}`,
      1,
      /at most 64/,
    ],
    ['targets:\n  t:\n    type: aws\n    type: aws\n', 4, /unique/i],
    ['a: &x [1]\nb: *x\n', 1, /unknown key "a"/],
    ['store: "unterminated\n', 2, /Missing closing "quote/],
  ];

  it('refuses each bad file with FERRY_CONFIG_INVALID naming the line', () => {
    const wrong: string[] = [];
    for (const [text, line, pattern] of BAD) {
      let error: unknown;
      try {
        parseConfig(text, PATH);
      } catch (e) {
        error = e;
      }
      const ok =
        isFerryError(error, 'FERRY_CONFIG_INVALID') &&
        error.message.startsWith(`Cannot read ${PATH}:${line}: `) &&
        pattern.test(error.message) &&
        error.details.line === line;
      if (!ok)
        wrong.push(
          `${JSON.stringify(text.slice(0, 200))}\n  wanted :${line} ${pattern}\n  got ${String(error)}`,
        );
    }
    assert.deepEqual(wrong, []);
  });

  it('refuses alias bombs and deep nesting', () => {
    const bomb = `a: &a [x]\n${many(101, (i) => `b${i}: *a\n`)}`;
    assert.throws(
      () => parseConfig(`streams:\n  web:\n    ${bomb.replace(/\n/g, '\n    ')}`, PATH),
      (e: unknown) =>
        isFerryError(e, 'FERRY_CONFIG_INVALID') && /more than 100 aliases/.test(e.message),
    );
    const deep = `${'['.repeat(40)}${']'.repeat(40)}`;
    assert.throws(
      () => parseConfig(`streams: ${deep}\n`, PATH),
      (e: unknown) =>
        isFerryError(e, 'FERRY_CONFIG_INVALID') && /nested too deeply/.test(e.message),
    );
  });
});

describe('publish: ferry.yaml schema under random input', () => {
  it('any text either parses or is FERRY_CONFIG_INVALID naming a line', () => {
    const word = fc.constantFrom(
      'store',
      'state',
      'streams',
      'targets',
      'web',
      'prod',
      'type',
      'aws',
      'regions',
      'us-east-1',
      'method',
      'vm-import',
      'bucket',
      'encryption',
      'kmsKey',
      'kmsKeys',
      'alias/k',
      'credentials',
      'profile',
      'roleArn',
      'tags',
      'shareWith',
      '111122223333',
      'retention',
      'keep',
      'size',
      '8G',
      'layout',
      'disk',
      'streams',
      '&a',
      '*a',
      '[',
      ']',
      '{',
      '}',
      ',',
      ':',
      '- ',
      '"',
      "'",
      '#',
      'null',
      '3',
      '-1',
      'aws:x',
      'ferry:y',
      '\n',
      '\n  ',
      '\n    ',
      '\n      ',
      ' ',
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 60 }), (words) => {
        const text = words.join('');
        try {
          parseConfig(text, PATH);
        } catch (e) {
          assert.ok(
            isFerryError(e, 'FERRY_CONFIG_INVALID'),
            `${JSON.stringify(text)}: ${String(e)}`,
          );
          assert.match(e.message, /^Cannot read \/srv\/ferry\/ferry\.yaml(:\d+)?: /);
        }
      }),
      { numRuns: 2000, seed: 20261202 },
    );
  });
});
