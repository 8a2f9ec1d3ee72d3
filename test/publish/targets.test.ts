import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { resolveTargets, selectTargets } from '../../src/publish/index.js';
import { awsPlacement } from '../../src/publish/types.js';

const yaml = `streams:
  web: {}
  db: {}
targets:
  a:
    type: aws
    endpoint: local
    regions: [us-east-1, eu-west-1]
    encryption: {kmsKeys: {us-east-1: alias/one, eu-west-1: alias/two}}
    concurrency: 8
    streams: [web]
  b:
    type: aws
    method: vm-import
    bucket: imports
    endpoint: http://127.0.0.1:9999
    regions: [us-west-2]
    stallMinutes: 3
`;

describe('publish: targets from ferry.yaml', () => {
  it('makes a placement per region with its key, and takes concurrency and the stall limit', () => {
    const config = parseConfig(yaml, '/x/ferry.yaml');
    const picked = selectTargets(config, { stream: 'web' });
    assert.deepEqual(
      picked.map((t) => t.name),
      ['a', 'b'],
    );
    assert.deepEqual(
      selectTargets(config, { stream: 'db' }).map((t) => t.name),
      ['b'],
    );
    const [a, b] = resolveTargets(picked, { localUrl: 'http://127.0.0.1:1234' });
    assert.deepEqual(
      a?.placements.map((p) => {
        const aws = awsPlacement(p);
        return [aws.key, aws.endpoint, aws.kmsKeyId, aws.encrypted];
      }),
      [
        ['a/us-east-1', 'http://127.0.0.1:1234', 'alias/one', true],
        ['a/eu-west-1', 'http://127.0.0.1:1234', 'alias/two', true],
      ],
    );
    assert.equal(a?.concurrency, 8);
    assert.equal(b?.concurrency, 16);
    assert.equal(b?.stallMs, 180_000);
    assert.equal(awsPlacement(b!.placements[0]!).encrypted, false);
    assert.equal(
      resolveTargets(picked, { localUrl: 'http://x', concurrency: 2 })[0]?.concurrency,
      2,
    );
    assert.throws(() => selectTargets(config, { only: ['nope'] }), { code: 'FERRY_USAGE' });
  });
});
