/**
 * Checks the EBS direct API handler against botocore's service model
 * (ebs/2019-11-02/service-2.json, from python3-botocore or a pip install):
 * exception statuses, each operation's method, URI and success status, and
 * that every member a response carries is one the model's output shape has,
 * in the location the model gives it. Skipped when no model is installed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { EBS_EXCEPTIONS, EbsEngine, ebsService } from '../../src/cloud/ebs/index.js';
import type { CloudRequest, CloudResponse } from '../../src/cloud/service.js';
import { block, sha256b64 } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

interface Member {
  shape: string;
  location?: string;
  locationName?: string;
}
interface Shape {
  type: string;
  members?: Record<string, Member>;
  exception?: boolean;
  error?: { httpStatusCode: number };
  payload?: string;
}
interface Model {
  operations: Record<
    string,
    {
      http: { method: string; requestUri: string; responseCode?: number };
      output?: { shape: string };
    }
  >;
  shapes: Record<string, Shape>;
}

function findModel(): Model | null {
  const rel = join('botocore', 'data', 'ebs', '2019-11-02', 'service-2.json');
  const dirs = [process.env.FERRY_BOTOCORE_DIR, '/usr/lib/python3/dist-packages'];
  try {
    const out = execFileSync(
      'python3',
      ['-c', 'import botocore, os; print(os.path.dirname(os.path.dirname(botocore.__file__)))'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    dirs.push(out.trim());
  } catch {
    // no python3 with botocore
  }
  for (const d of dirs) {
    if (d === undefined || d === '') continue;
    const p = join(d, rel);
    if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8')) as Model;
    if (existsSync(`${p}.gz`))
      return JSON.parse(gunzipSync(readFileSync(`${p}.gz`)).toString('utf8')) as Model;
  }
  return null;
}

const model = findModel();

function request(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body: Buffer = Buffer.alloc(0),
  query = '',
): CloudRequest {
  return {
    method,
    path,
    query: new URLSearchParams(query),
    headers,
    body,
    account: '000000000000',
    region: 'us-east-1',
    principal: 'arn:aws:iam::000000000000:root',
    requestId: 'r',
  };
}

/**
 * Members AWS added after the model Debian ships (botocore 1.29, late 2022),
 * which the SDK v3 knows: allowed only while the model lacks them.
 */
const NEWER_THAN_MODEL: Record<string, readonly string[]> = {
  StartSnapshot: ['SseType'],
};

/** Asserts a response uses only the members of `op`'s output shape, each where the model puts it. */
function conforms(m: Model, op: string, r: CloudResponse): void {
  const o = m.operations[op]!;
  assert.equal(r.status, o.http.responseCode ?? 200, `${op} status`);
  const shape = m.shapes[o.output!.shape]!;
  const members = shape.members ?? {};
  const headers = new Map<string, string>();
  const body = new Set<string>();
  for (const [name, mem] of Object.entries(members)) {
    if (mem.location === 'header') headers.set(mem.locationName!.toLowerCase(), name);
    else if (shape.payload !== name) body.add(name);
  }
  for (const h of Object.keys(r.headers)) {
    if (h.toLowerCase().startsWith('x-amz-'))
      assert.ok(headers.has(h.toLowerCase()), `${op}: header ${h} is in the model`);
  }
  if (shape.payload !== undefined) return;
  const doc = JSON.parse(r.body?.toString() ?? '{}') as Record<string, unknown>;
  const newer = NEWER_THAN_MODEL[op] ?? [];
  for (const k of Object.keys(doc))
    assert.ok(body.has(k) || newer.includes(k), `${op}: body member ${k} is in the model`);
}

it('answers as botocore\u2019s EBS model says', {
  skip: model === null ? 'no botocore EBS model installed' : false,
}, async () => {
  const m = model!;
  for (const [name, shape] of Object.entries(m.shapes)) {
    if (shape.exception) {
      assert.equal(
        EBS_EXCEPTIONS[name as keyof typeof EBS_EXCEPTIONS],
        shape.error?.httpStatusCode,
        name,
      );
    }
  }
  const routes: Record<string, [string, string]> = {
    StartSnapshot: ['POST', '/snapshots'],
    PutSnapshotBlock: ['PUT', '/snapshots/{snapshotId}/blocks/{blockIndex}'],
    CompleteSnapshot: ['POST', '/snapshots/completion/{snapshotId}'],
    ListSnapshotBlocks: ['GET', '/snapshots/{snapshotId}/blocks'],
    ListChangedBlocks: ['GET', '/snapshots/{secondSnapshotId}/changedblocks'],
    GetSnapshotBlock: ['GET', '/snapshots/{snapshotId}/blocks/{blockIndex}'],
  };
  assert.deepEqual(Object.keys(m.operations).sort(), Object.keys(routes).sort());
  for (const [op, [method, uri]] of Object.entries(routes)) {
    assert.equal(m.operations[op]!.http.method, method, op);
    assert.equal(m.operations[op]!.http.requestUri, uri, op);
  }
  await withTempDir(async (dir) => {
    const engine = await EbsEngine.open(dir);
    const ebs = ebsService(engine);
    try {
      const start = await ebs(
        request(
          'POST',
          '/snapshots',
          {},
          Buffer.from(
            JSON.stringify({ VolumeSize: 1, Description: 'd', Tags: [{ Key: 'k', Value: 'v' }] }),
          ),
        ),
      );
      conforms(m, 'StartSnapshot', start);
      const id = (JSON.parse(start.body!.toString()) as { SnapshotId: string }).SnapshotId;
      const data = block(3);
      const put = await ebs(
        request(
          'PUT',
          `/snapshots/${id}/blocks/0`,
          {
            'x-amz-data-length': '524288',
            'x-amz-checksum': sha256b64(data),
            'x-amz-checksum-algorithm': 'SHA256',
          },
          data,
        ),
      );
      conforms(m, 'PutSnapshotBlock', put);
      conforms(
        m,
        'CompleteSnapshot',
        await ebs(
          request('POST', `/snapshots/completion/${id}`, { 'x-amz-changedblockscount': '1' }),
        ),
      );
      const list = await ebs(request('GET', `/snapshots/${id}/blocks`));
      conforms(m, 'ListSnapshotBlocks', list);
      conforms(m, 'ListChangedBlocks', await ebs(request('GET', `/snapshots/${id}/changedblocks`)));
      const token = (JSON.parse(list.body!.toString()) as { Blocks: Array<{ BlockToken: string }> })
        .Blocks[0]!.BlockToken;
      conforms(
        m,
        'GetSnapshotBlock',
        await ebs(
          request(
            'GET',
            `/snapshots/${id}/blocks/0`,
            {},
            Buffer.alloc(0),
            new URLSearchParams({ blockToken: token }).toString(),
          ),
        ),
      );
      // Errors: the type header names an exception of the model, the body
      // carries its members (and the lowercase message AWS's JSON services send).
      const errors = [
        await ebs(request('GET', '/snapshots/snap-00000000000000000/blocks')),
        await ebs(request('GET', `/snapshots/${id}/blocks`, {}, Buffer.alloc(0), 'pageToken=AAAA')),
        await ebs(
          request('POST', `/snapshots/completion/${id}`, { 'x-amz-changedblockscount': '5' }),
        ),
      ];
      for (const r of errors) {
        const name = r.headers['x-amzn-ErrorType']!;
        const shape = m.shapes[name];
        assert.ok(shape?.exception, `${name} is an exception of the model`);
        assert.equal(r.status, shape.error?.httpStatusCode);
        const doc = JSON.parse(r.body!.toString()) as Record<string, unknown>;
        for (const k of Object.keys(doc)) {
          assert.ok(k === 'message' || k in (shape.members ?? {}), `${name}: member ${k}`);
        }
        const reason = doc.Reason;
        if (reason !== undefined) {
          const member = shape.members?.Reason;
          const values = (m.shapes[member!.shape] as { enum?: string[] }).enum ?? [];
          assert.ok(values.includes(reason as string), `${name}: Reason ${String(reason)}`);
        }
      }
    } finally {
      await engine.close();
    }
  });
});
