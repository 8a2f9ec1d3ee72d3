import type { CloudRequest, CloudResponse, ServiceHandler } from '../service.js';
import { invalid } from './ebs-error.js';
import type { EbsEngine } from './engine.js';
import {
  ebsErrorResponse,
  epochSeconds,
  errorResponse,
  header,
  isEbs,
  jsonBody,
  jsonResponse,
  optionalInt,
  requiredInt,
  requiredString,
} from './rest-json.js';
import type { EbsContext } from './snapshot-area.js';
import type { SnapshotTag } from './snapshot-record.js';
import type { StartSnapshotInput } from './validate.js';

/**
 * The EBS direct API's REST-JSON bindings (ebs-2019-11-02), in front of an
 * engine:
 *
 *   POST /snapshots                                StartSnapshot (JSON body), 201
 *   PUT  /snapshots/{snapshotId}/blocks/{index}    PutSnapshotBlock (block in the body), 201
 *   POST /snapshots/completion/{snapshotId}        CompleteSnapshot, 202
 *   GET  /snapshots/{snapshotId}/blocks            ListSnapshotBlocks
 *   GET  /snapshots/{secondSnapshotId}/changedblocks  ListChangedBlocks
 *   GET  /snapshots/{snapshotId}/blocks/{index}?blockToken=  GetSnapshotBlock
 */
export function ebsService(engine: EbsEngine): ServiceHandler {
  return async (request: CloudRequest): Promise<CloudResponse> => {
    try {
      return await route(engine, request);
    } catch (error) {
      if (isEbs(error)) return ebsErrorResponse(request.requestId, error);
      return errorResponse(
        request.requestId,
        'InternalServerException',
        500,
        'The request failed on an internal error.',
      );
    }
  };
}

async function route(engine: EbsEngine, req: CloudRequest): Promise<CloudResponse> {
  const ctx: EbsContext = { account: req.account, region: req.region };
  const parts = req.path.split('/').slice(1);
  if (parts[parts.length - 1] === '') parts.pop();
  const [root, a, b, c] = parts;
  if (root === 'snapshots') {
    if (req.method === 'POST' && parts.length === 1) return start(engine, ctx, req);
    if (req.method === 'POST' && parts.length === 2 && a === 'completion') {
      throw invalid('INVALID_SNAPSHOT_ID', 'The snapshot ID is missing.');
    }
    if (req.method === 'POST' && parts.length === 3 && a === 'completion') {
      return complete(engine, ctx, req, b!);
    }
    if (parts.length === 4 && b === 'blocks' && a !== undefined) {
      const index = blockIndex(c!);
      if (req.method === 'PUT') return put(engine, ctx, req, a, index);
      if (req.method === 'GET') return get(engine, ctx, req, a, index);
    }
    if (parts.length === 3 && req.method === 'GET' && a !== undefined) {
      if (b === 'blocks') return listBlocks(engine, ctx, req, a);
      if (b === 'changedblocks') return listChanged(engine, ctx, req, a);
    }
  }
  return errorResponse(
    req.requestId,
    'UnknownOperationException',
    404,
    `No EBS direct API operation is ${req.method} ${req.path.slice(0, 200)}.`,
  );
}

function blockIndex(s: string): number {
  if (!/^[0-9]{1,10}$/.test(s)) {
    throw invalid('INVALID_BLOCK', `The block index '${s.slice(0, 20)}' is not a block index.`);
  }
  return Number(s);
}

async function start(
  engine: EbsEngine,
  ctx: EbsContext,
  req: CloudRequest,
): Promise<CloudResponse> {
  const doc = jsonBody(req.body);
  const input: StartSnapshotInput = {
    volumeSize: num(doc.VolumeSize, 'VolumeSize', true)!,
    parentSnapshotId: str(doc.ParentSnapshotId, 'ParentSnapshotId'),
    tags: tags(doc.Tags),
    description: str(doc.Description, 'Description'),
    clientToken: str(doc.ClientToken, 'ClientToken'),
    encrypted: bool(doc.Encrypted, 'Encrypted'),
    kmsKeyArn: str(doc.KmsKeyArn, 'KmsKeyArn'),
    timeout: num(doc.Timeout, 'Timeout', false),
  };
  const s = await engine.startSnapshot(ctx, input);
  return jsonResponse(201, req.requestId, {
    Description: s.description ?? undefined,
    SnapshotId: s.snapshotId,
    OwnerId: s.ownerId,
    Status: s.status,
    StartTime: epochSeconds(s.startTime),
    VolumeSize: s.volumeSize,
    BlockSize: s.blockSize,
    Tags: s.tags.map((t) => ({ Key: t.key, Value: t.value })),
    ParentSnapshotId: s.parentSnapshotId ?? undefined,
    KmsKeyArn: s.kmsKeyArn ?? undefined,
    SseType: s.encrypted ? 'sse-kms' : 'none',
  });
}

async function put(
  engine: EbsEngine,
  ctx: EbsContext,
  req: CloudRequest,
  snapshotId: string,
  index: number,
): Promise<CloudResponse> {
  const h = req.headers;
  const r = await engine.putSnapshotBlock(ctx, {
    snapshotId,
    blockIndex: index,
    data: req.content ?? req.body,
    dataLength: requiredInt(header(h, 'x-amz-Data-Length'), 'x-amz-Data-Length'),
    checksum: requiredString(header(h, 'x-amz-Checksum'), 'x-amz-Checksum'),
    checksumAlgorithm: requiredString(
      header(h, 'x-amz-Checksum-Algorithm'),
      'x-amz-Checksum-Algorithm',
    ),
    progress: optionalInt(header(h, 'x-amz-Progress'), 'x-amz-Progress'),
  });
  return jsonResponse(
    201,
    req.requestId,
    {},
    { 'x-amz-Checksum': r.checksum, 'x-amz-Checksum-Algorithm': r.checksumAlgorithm },
  );
}

async function complete(
  engine: EbsEngine,
  ctx: EbsContext,
  req: CloudRequest,
  snapshotId: string,
): Promise<CloudResponse> {
  const h = req.headers;
  const r = await engine.completeSnapshot(ctx, {
    snapshotId,
    changedBlocksCount: requiredInt(
      header(h, 'x-amz-ChangedBlocksCount'),
      'x-amz-ChangedBlocksCount',
    ),
    checksum: header(h, 'x-amz-Checksum'),
    checksumAlgorithm: header(h, 'x-amz-Checksum-Algorithm'),
    checksumAggregationMethod: header(h, 'x-amz-Checksum-Aggregation-Method'),
  });
  return jsonResponse(202, req.requestId, { Status: r.status });
}

function paging(req: CloudRequest): {
  maxResults: number | undefined;
  nextToken: string | undefined;
  startingBlockIndex: number | undefined;
} {
  const q = req.query;
  return {
    maxResults: optionalInt(q.get('maxResults'), 'maxResults'),
    nextToken: q.get('pageToken') ?? undefined,
    startingBlockIndex: optionalInt(q.get('startingBlockIndex'), 'startingBlockIndex'),
  };
}

async function listBlocks(
  engine: EbsEngine,
  ctx: EbsContext,
  req: CloudRequest,
  snapshotId: string,
): Promise<CloudResponse> {
  const r = await engine.listSnapshotBlocks(ctx, { snapshotId, ...paging(req) });
  return jsonResponse(200, req.requestId, {
    Blocks: r.blocks.map((x) => ({ BlockIndex: x.blockIndex, BlockToken: x.blockToken })),
    ExpiryTime: epochSeconds(r.expiryTime),
    VolumeSize: r.volumeSize,
    BlockSize: r.blockSize,
    NextToken: r.nextToken,
  });
}

async function listChanged(
  engine: EbsEngine,
  ctx: EbsContext,
  req: CloudRequest,
  secondSnapshotId: string,
): Promise<CloudResponse> {
  const r = await engine.listChangedBlocks(ctx, {
    secondSnapshotId,
    firstSnapshotId: req.query.get('firstSnapshotId') ?? undefined,
    ...paging(req),
  });
  return jsonResponse(200, req.requestId, {
    ChangedBlocks: r.blocks.map((x) => ({
      BlockIndex: x.blockIndex,
      FirstBlockToken: x.firstBlockToken,
      SecondBlockToken: x.secondBlockToken,
    })),
    ExpiryTime: epochSeconds(r.expiryTime),
    VolumeSize: r.volumeSize,
    BlockSize: r.blockSize,
    NextToken: r.nextToken,
  });
}

async function get(
  engine: EbsEngine,
  ctx: EbsContext,
  req: CloudRequest,
  snapshotId: string,
  index: number,
): Promise<CloudResponse> {
  const r = await engine.getSnapshotBlock(ctx, {
    snapshotId,
    blockIndex: index,
    blockToken: requiredString(req.query.get('blockToken'), 'blockToken'),
  });
  return {
    status: 200,
    headers: {
      'Content-Type': 'application/octet-stream',
      'x-amzn-RequestId': req.requestId,
      'x-amz-Data-Length': String(r.dataLength),
      'x-amz-Checksum': r.checksum,
      'x-amz-Checksum-Algorithm': r.checksumAlgorithm,
    },
    body: r.data,
  };
}

// ---- JSON members ---------------------------------------------------------

function str(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid('INVALID_PARAMETER_VALUE', `${name} must be a string.`);
  return v;
}

function num(v: unknown, name: string, required: boolean): number | undefined {
  if (v === undefined || v === null) {
    if (required) throw invalid('INVALID_PARAMETER_VALUE', `${name} is required.`);
    return undefined;
  }
  if (typeof v !== 'number') throw invalid('INVALID_PARAMETER_VALUE', `${name} must be a number.`);
  return v;
}

function bool(v: unknown, name: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean')
    throw invalid('INVALID_PARAMETER_VALUE', `${name} must be a boolean.`);
  return v;
}

function tags(v: unknown): SnapshotTag[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid('INVALID_TAG', 'Tags must be a list.');
  return v.map((t: unknown) => {
    const o = (typeof t === 'object' && t !== null ? t : {}) as Record<string, unknown>;
    if (typeof o.Key !== 'string') throw invalid('INVALID_TAG', 'Every tag needs a Key.');
    if (o.Value !== undefined && o.Value !== null && typeof o.Value !== 'string') {
      throw invalid('INVALID_TAG', `The value of tag '${o.Key}' must be a string.`);
    }
    return { key: o.Key, value: typeof o.Value === 'string' ? o.Value : '' };
  });
}
