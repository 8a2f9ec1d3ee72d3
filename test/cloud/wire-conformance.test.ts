/** The conformance checker itself: it must catch what a wrong endpoint would send. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadModel } from '../helpers/botocore-model.js';
import type { Exchange } from '../helpers/recording-proxy.js';
import { checkExchange } from '../helpers/wire-conformance.js';

const ec2 = loadModel('ec2', '2016-11-15');
const kms = loadModel('kms', '2014-11-01');
const skip = ec2 === null || kms === null ? 'python3-botocore is not installed' : false;

function ec2Exchange(
  body: string,
  status = 200,
  request = 'Action=DescribeRegions&Version=2016-11-15',
): Exchange {
  return {
    method: 'POST',
    url: '/',
    requestHeaders: { 'content-type': 'application/x-www-form-urlencoded' },
    requestBody: Buffer.from(request),
    status,
    responseHeaders: {},
    responseBody: Buffer.from(body),
  };
}

const GOOD =
  '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>' +
  '<regionInfo><item><regionName>us-east-1</regionName><regionEndpoint>e</regionEndpoint>' +
  '<optInStatus>opt-in-not-required</optInStatus></item></regionInfo></DescribeRegionsResponse>';

describe('cloud: the wire conformance checker', { skip }, () => {
  it('passes a well-formed EC2 exchange', () => {
    const r = checkExchange(ec2!, ec2Exchange(GOOD));
    assert.equal(r.operation, 'DescribeRegions');
    assert.deepEqual(r.problems, []);
  });

  it('catches unknown elements, wrong list items, missing requestId and bad parameters', () => {
    const cases: Array<[Exchange, RegExp]> = [
      [ec2Exchange(GOOD.replace(/regionName/g, 'name')), /<name> is not a member/],
      [
        ec2Exchange(GOOD.replace(/<item>/, '<member>').replace(/<\/item>/, '</member>')),
        /list item <member>/,
      ],
      [ec2Exchange(GOOD.replace('<requestId>r</requestId>', '')), /no <requestId>/],
      [
        ec2Exchange(
          GOOD.replace('DescribeRegionsResponse', 'X').replace('DescribeRegionsResponse', 'X'),
        ),
        /root <X>/,
      ],
      [
        ec2Exchange(GOOD, 200, 'Action=DescribeRegions&Version=2016-11-15&Colour=red'),
        /Colour is not a member/,
      ],
      [
        ec2Exchange(GOOD, 200, 'Action=DescribeRegions&Version=2016-11-15&AllRegions=yes'),
        /not a boolean/,
      ],
      [
        ec2Exchange(GOOD, 200, 'Action=DescribeRegions&Version=2016-11-15&Filter.0.Name=x'),
        /list index/,
      ],
      [
        ec2Exchange('<Response><Errors><Error><Code>X</Code></Error></Errors></Response>', 400),
        /RequestID/,
      ],
      [ec2Exchange('not xml', 400), /not XML/],
    ];
    for (const [ex, re] of cases) {
      const problems = checkExchange(ec2!, ex).problems;
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re}: ${JSON.stringify(problems)}`,
      );
    }
  });

  it('checks JSON members, types, enums and modeled error statuses', () => {
    const json = (
      target: string,
      response: unknown,
      status = 200,
      request: unknown = {},
    ): Exchange => ({
      method: 'POST',
      url: '/',
      requestHeaders: { 'x-amz-target': `TrentService.${target}` },
      requestBody: Buffer.from(JSON.stringify(request)),
      status,
      responseHeaders: {},
      responseBody: Buffer.from(JSON.stringify(response)),
    });
    const meta = { KeyId: 'k', KeyState: 'Enabled', Enabled: true, CreationDate: 1 };
    assert.deepEqual(
      checkExchange(kms!, json('DescribeKey', { KeyMetadata: meta }, 200, { KeyId: 'k' })).problems,
      [],
    );
    const bad: Array<[Exchange, RegExp]> = [
      [
        json('DescribeKey', { KeyMetadata: { ...meta, KeyState: 'Shiny' } }, 200, { KeyId: 'k' }),
        /not one of/,
      ],
      [
        json('DescribeKey', { KeyMetadata: { ...meta, Enabled: 'yes' } }, 200, { KeyId: 'k' }),
        /not a boolean/,
      ],
      [
        json('DescribeKey', { KeyMetadata: { ...meta, CreationDate: 'today' } }, 200, {
          KeyId: 'k',
        }),
        /timestamp/,
      ],
      [json('DescribeKey', { Extra: 1 }, 200, { KeyId: 'k' }), /Extra is not a body member/],
      [json('DescribeKey', { KeyMetadata: meta }, 200, {}), /required KeyId missing/],
      [
        json('DescribeKey', { __type: 'NotFoundException', message: 'm' }, 500, { KeyId: 'k' }),
        /model says 400/,
      ],
      [
        json('DescribeKey', { __type: 'MadeUpException', message: 'm' }, 400, { KeyId: 'k' }),
        /neither an error/,
      ],
      [json('Frobnicate', {}), /no operation of the model/],
    ];
    for (const [ex, re] of bad) {
      const problems = checkExchange(kms!, ex).problems;
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re}: ${JSON.stringify(problems)}`,
      );
    }
  });
});
