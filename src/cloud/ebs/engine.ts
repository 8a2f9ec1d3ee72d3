import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../store/local-store.js';
import { withLock } from '../../store/store-lock.js';
import { RequestBody } from '../request-body.js';
import {
  type BlockMap,
  decodeBlockMap,
  differences,
  encodeBlockMap,
  linearChecksum,
  lowerBound,
  overlay,
  sortedMap,
} from './block-map.js';
import { BlockStore, blockDigest, syncDir } from './block-store.js';
import { EbsError, invalid, snapshotNotFound } from './ebs-error.js';
import {
  BLOCK_SIZE,
  BLOCKS_PER_GIB,
  DEFAULT_BLOCK_TOKEN_TTL_SECONDS,
  DEFAULT_PENDING_SNAPSHOT_LIMIT,
} from './limits.js';
import type {
  ChangedBlock,
  CompleteSnapshotInput,
  GetSnapshotBlockInput,
  ListChangedBlocksInput,
  ListedBlocks,
  ListSnapshotBlocksInput,
  PutSnapshotBlockInput,
  SnapshotBlock,
} from './operations.js';
import { type JournalEntry, PutJournal } from './put-journal.js';
import { type EbsOperation, RateLimiter, type RateLimits } from './rate-limiter.js';
import {
  type Area,
  type EbsContext,
  loadArea,
  mapPath,
  newPending,
  type Pending,
  saveRecord,
} from './snapshot-area.js';
import {
  recordInfo,
  type SnapshotInfo,
  type SnapshotRecord,
  type SnapshotTag,
} from './snapshot-record.js';
import { TokenSigner } from './tokens.js';
import {
  checkAlgorithm,
  checkBlockIndex,
  checkMaxResults,
  checkSnapshotId,
  checkStartingBlockIndex,
  decodeChecksum,
  normalStart,
  type StartSnapshotInput,
} from './validate.js';

/**
 * Says whether something still uses a snapshot (an image registered from
 * it): a description of the user ("ami-0123…") blocks DeleteSnapshot.
 */
export type InUseGuard = (
  ctx: EbsContext,
  snapshotId: string,
) => string | undefined | Promise<string | undefined>;

export interface EbsEngineOptions {
  /** The clock, in milliseconds (tests move it). */
  readonly now?: () => number;
  /** Pending snapshots allowed per account and region (AWS's default quota: 100). */
  readonly pendingSnapshotLimit?: number;
  /** Request-rate limits per account, region and operation (none by default). */
  readonly rateLimits?: RateLimits;
  /** The account's default EBS key in a region (alias/aws/ebs), for encrypted snapshots without KmsKeyArn. */
  readonly defaultKmsKeyArn?: (account: string, region: string) => string | Promise<string>;
  /** Whether the account encrypts new snapshots by default in a region. */
  readonly encryptionByDefault?: (account: string, region: string) => boolean;
  /** Whether the caller may use a KMS key (default: keys of its own account only). */
  readonly canUseKey?: (ctx: EbsContext, keyArn: string) => boolean | Promise<boolean>;
  /** How long block tokens stay valid, in seconds (7 days by default). */
  readonly blockTokenTtlSeconds?: number;
}

const ACCOUNT = /^[0-9]{12}$/;
const REGION = /^[a-z0-9-]{1,40}$/;
/** Block maps kept in memory, own and resolved each (a 64 GiB full volume's map is about 13 MB). */
const MAP_CACHE = 8;

/**
 * The EBS direct API over a data directory: snapshots per account and
 * region, their blocks content-addressed and shared (see BlockStore). The
 * route handler (ebsService) speaks REST-JSON in front of it; EC2 uses its
 * queries (listSnapshots, getSnapshot, deleteSnapshot, copySnapshot).
 *
 *   secret                                    key of block and page tokens
 *   packs/                                    BlockStore (block pack files)
 *   accounts/<account>/<region>/snapshots/    <id>.json records, <id>.map own blocks
 *   accounts/<account>/<region>/journals/     <id>.log puts of pending snapshots
 *
 * One engine owns a data directory at a time (its lock file, `lock`).
 */
export class EbsEngine {
  readonly root: string;
  private readonly blocks: BlockStore;
  private readonly signer: TokenSigner;
  private readonly now: () => number;
  private readonly limiter: RateLimiter;
  private readonly options: EbsEngineOptions;
  private readonly areas = new Map<string, Promise<Area>>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly ownMaps = new Map<string, BlockMap>();
  private readonly resolved = new Map<string, BlockMap>();
  private readonly guards: InUseGuard[] = [];
  private readonly lock: HeldLock;

  private constructor(root: string, secret: Buffer, options: EbsEngineOptions, lock: HeldLock) {
    this.root = root;
    this.lock = lock;
    this.signer = new TokenSigner(secret);
    this.now = options.now ?? Date.now;
    this.blocks = new BlockStore(root, this.now);
    this.limiter = new RateLimiter(options.rateLimits ?? {}, this.now);
    this.options = options;
  }

  /**
   * Opens (creating) the engine's data directory and holds its lock until
   * close(): a second engine on the directory fails with FERRY_STORE_LOCKED
   * (a lock left by a killed process of this host is taken over).
   */
  static async open(root: string, options: EbsEngineOptions = {}): Promise<EbsEngine> {
    await mkdir(root, { recursive: true });
    const lock = await holdLock(join(root, 'lock'));
    try {
      return await EbsEngine.openLocked(root, options, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  private static async openLocked(
    root: string,
    options: EbsEngineOptions,
    lock: HeldLock,
  ): Promise<EbsEngine> {
    const secretPath = join(root, 'secret');
    let secret: Buffer;
    try {
      secret = await readFile(secretPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await writeFileAtomic(secretPath, randomBytes(32));
      await chmod(secretPath, 0o600);
      secret = await readFile(secretPath);
    }
    const engine = new EbsEngine(root, secret, options, lock);
    await engine.blocks.open();
    return engine;
  }

  /** Registers a check DeleteSnapshot runs first (EC2: images registered from the snapshot). */
  addInUseGuard(guard: InUseGuard): void {
    this.guards.push(guard);
  }

  async close(): Promise<void> {
    for (const p of this.areas.values()) {
      const area = await p;
      for (const pending of area.pending.values()) await pending.journal.close();
    }
    this.areas.clear();
    await this.blocks.close();
    await this.lock.release();
  }

  // ---- The EBS direct API -------------------------------------------------

  async startSnapshot(ctx: EbsContext, input: StartSnapshotInput): Promise<SnapshotInfo> {
    this.throttle(ctx, 'StartSnapshot');
    const p = normalStart(input);
    const area = await this.area(ctx);
    const fingerprint = createHash('sha256')
      .update(
        JSON.stringify([
          p.volumeSize,
          p.parentSnapshotId,
          p.tags,
          p.description,
          p.encrypted,
          p.kmsKeyArn,
          p.timeout,
        ]),
      )
      .digest('hex');
    return this.locked(`${area.dir}#start`, async () => {
      if (p.clientToken !== null) {
        const id = area.tokens.get(p.clientToken);
        const prior = id === undefined ? undefined : area.records.get(id);
        if (prior !== undefined && prior.deleted === null) {
          if (prior.requestFingerprint !== fingerprint) {
            throw new EbsError(
              'ConflictException',
              `The client token '${p.clientToken}' was used by another StartSnapshot request with different parameters.`,
            );
          }
          return this.info(area, await this.expireIfDue(area, prior));
        }
      }
      const limit = this.options.pendingSnapshotLimit ?? DEFAULT_PENDING_SNAPSHOT_LIMIT;
      let pendingCount = 0;
      for (const r of [...area.records.values()]) {
        if (r.deleted === null && (await this.expireIfDue(area, r)).status === 'pending') {
          pendingCount++;
        }
      }
      if (pendingCount >= limit) {
        throw new EbsError(
          'ServiceQuotaExceededException',
          `The account ${ctx.account} has ${pendingCount} pending snapshots in ${ctx.region}, its limit.`,
        );
      }
      let encrypted = p.encrypted === true || this.encryptsByDefault(ctx);
      let key = p.kmsKeyArn;
      if (p.parentSnapshotId !== null) {
        const parent = area.records.get(p.parentSnapshotId);
        if (parent === undefined || parent.deleted !== null) {
          throw snapshotNotFound(p.parentSnapshotId);
        }
        if (parent.status !== 'completed') {
          throw invalid(
            'INVALID_SNAPSHOT_ID',
            `The parent snapshot '${parent.id}' is ${parent.status}, not completed.`,
          );
        }
        if (p.volumeSize < parent.volumeSize) {
          throw invalid(
            'INVALID_VOLUME_SIZE',
            `The volume size ${p.volumeSize} GiB is smaller than the parent snapshot's ${parent.volumeSize} GiB.`,
          );
        }
        if (parent.encrypted) {
          encrypted = true;
          key ??= parent.kmsKeyArn;
        }
      }
      if (key !== null && !encrypted) {
        throw invalid(
          'INVALID_PARAMETER_VALUE',
          'KmsKeyArn needs an encrypted snapshot: set Encrypted, or start from an encrypted parent.',
        );
      }
      if (encrypted) {
        key ??= await this.defaultKey(ctx);
        const allowed = await (this.options.canUseKey ?? ownKeyOnly)(ctx, key);
        if (!allowed) {
          throw new EbsError(
            'AccessDeniedException',
            `The account ${ctx.account} has no access to the KMS key ${key}.`,
            'DEPENDENCY_ACCESS_DENIED',
          );
        }
      }
      let id: string;
      do id = `snap-${randomBytes(9).toString('hex').slice(0, 17)}`;
      while (area.records.has(id));
      const now = this.now();
      const record: SnapshotRecord = {
        format: 'ferry-ebs-snapshot',
        version: 1,
        id,
        owner: ctx.account,
        region: ctx.region,
        status: 'pending',
        statusMessage: null,
        volumeSize: p.volumeSize,
        parentId: p.parentSnapshotId,
        description: p.description,
        tags: p.tags,
        encrypted,
        kmsKeyArn: encrypted ? key : null,
        timeoutMinutes: p.timeout,
        startTime: now,
        completionTime: null,
        clientToken: p.clientToken,
        requestFingerprint: fingerprint,
        changedBlocks: null,
        checksum: null,
        progress: 0,
        deleted: null,
      };
      await saveRecord(area, record);
      const { journal } = await PutJournal.open(join(area.dir, 'journals', `${id}.log`));
      await syncDir(join(area.dir, 'journals'));
      area.pending.set(id, newPending(journal, [], now));
      if (p.clientToken !== null) area.tokens.set(p.clientToken, id);
      return this.info(area, record);
    });
  }

  /**
   * The bytes of a block put lately (any account or region), when a copy is
   * kept: PutSnapshotBlock bodies are compared with it as they arrive (see
   * blockReceiver). Never modified afterwards.
   */
  recentBlock(digest: string): Buffer | undefined {
    return this.blocks.recentCopy(digest);
  }

  async putSnapshotBlock(
    ctx: EbsContext,
    input: PutSnapshotBlockInput,
  ): Promise<{ checksum: string; checksumAlgorithm: 'SHA256' }> {
    this.throttle(ctx, 'PutSnapshotBlock');
    const area = await this.area(ctx);
    const record = await this.pendingRecord(area, input.snapshotId);
    checkBlockIndex(input.blockIndex, record.volumeSize);
    if (input.dataLength !== BLOCK_SIZE) {
      throw invalid(
        'INVALID_PARAMETER_VALUE',
        `The data length must be ${BLOCK_SIZE} bytes, not ${input.dataLength}.`,
      );
    }
    const data = Buffer.isBuffer(input.data) ? new RequestBody(input.data) : input.data;
    if (data.length !== input.dataLength) {
      throw invalid(
        'INVALID_PARAMETER_VALUE',
        `The block data is ${data.length} bytes, but DataLength says ${input.dataLength}.`,
      );
    }
    checkAlgorithm(input.checksumAlgorithm);
    const given = decodeChecksum(input.checksum, 'block checksum');
    const p = input.progress;
    if (p !== undefined && (!Number.isSafeInteger(p) || p < 0 || p > 100)) {
      throw invalid('INVALID_PARAMETER_VALUE', `The progress must be 0 to 100, not ${p}.`);
    }
    const progress = p ?? -1;
    // A body the receiver matched with a kept copy comes with its hash; a
    // block this engine stores already (another placement of the same
    // image) is checked by comparing bytes with it, which costs less than
    // hashing them; any other block is hashed.
    const claimed = given.toString('hex');
    const digest =
      !data.hashed && (await this.blocks.holds(claimed, data.bytes)) ? claimed : data.sha256Hex();
    if (!given.equals(Buffer.from(digest, 'hex'))) {
      throw invalid(
        'INVALID_PARAMETER_VALUE',
        `The checksum ${input.checksum} does not match the block data (SHA-256 ${Buffer.from(digest, 'hex').toString('base64')}).`,
      );
    }
    const pending = area.pending.get(record.id);
    if (pending === undefined || pending.closed) throw notPending(record.id, 'completing');
    pending.inflight++;
    try {
      await this.blocks.put(digest, data.bytes);
      const entry: JournalEntry = { index: input.blockIndex, digest, progress, time: this.now() };
      await pending.journal.append(entry);
      pending.own.set(input.blockIndex, digest);
      if (progress >= 0) pending.progress = progress;
      pending.lastActivity = Math.max(pending.lastActivity, this.now());
    } finally {
      pending.inflight--;
      if (pending.inflight === 0) for (const f of pending.idle.splice(0)) f();
    }
    return { checksum: Buffer.from(digest, 'hex').toString('base64'), checksumAlgorithm: 'SHA256' };
  }

  async completeSnapshot(
    ctx: EbsContext,
    input: CompleteSnapshotInput,
  ): Promise<{ status: 'completed' }> {
    this.throttle(ctx, 'CompleteSnapshot');
    checkSnapshotId(input.snapshotId);
    const count = input.changedBlocksCount;
    if (!Number.isSafeInteger(count) || count < 0) {
      throw invalid(
        'INVALID_PARAMETER_VALUE',
        `ChangedBlocksCount must be 0 or more, not ${count}.`,
      );
    }
    let given: string | null = null;
    if (input.checksum !== undefined) {
      decodeChecksum(input.checksum, 'aggregate checksum');
      checkAlgorithm(input.checksumAlgorithm);
      if (input.checksumAggregationMethod !== 'LINEAR') {
        throw invalid(
          'INVALID_PARAMETER_VALUE',
          `The checksum aggregation method must be LINEAR, not '${String(input.checksumAggregationMethod).slice(0, 32)}'.`,
        );
      }
      given = input.checksum;
    } else if (
      input.checksumAlgorithm !== undefined ||
      input.checksumAggregationMethod !== undefined
    ) {
      throw invalid(
        'INVALID_PARAMETER_VALUE',
        'ChecksumAlgorithm and ChecksumAggregationMethod need a Checksum.',
      );
    }
    const area = await this.area(ctx);
    return this.locked(`${area.dir}/${input.snapshotId}`, async () => {
      const found = this.live(area, input.snapshotId);
      const record = await this.expireIfDue(area, found);
      if (record.status === 'completed') {
        // A retry of a CompleteSnapshot that succeeded answers the same.
        if (record.changedBlocks === count && (given === null || given === record.checksum)) {
          return { status: 'completed' as const };
        }
        throw notPending(record.id, 'completed');
      }
      if (record.status === 'error') throw notPending(record.id, record.statusMessage ?? 'error');
      const pending = area.pending.get(record.id);
      if (pending === undefined) throw notPending(record.id, 'timing out');
      pending.closed = true;
      try {
        if (pending.inflight > 0) {
          await new Promise<void>((resolve) => pending.idle.push(resolve));
        }
        const own = sortedMap(pending.own);
        if (own.length !== count) {
          throw invalid(
            'INVALID_PARAMETER_VALUE',
            `ChangedBlocksCount is ${count}, but ${own.length} blocks were written to snapshot '${record.id}'.`,
          );
        }
        const checksum = linearChecksum(own);
        if (given !== null && given !== checksum) {
          throw invalid(
            'INVALID_PARAMETER_VALUE',
            `The aggregate checksum ${given} does not match the blocks written (LINEAR SHA-256 ${checksum}).`,
          );
        }
        await writeFileAtomic(mapPath(area, record.id), encodeBlockMap(own));
        await saveRecord(area, {
          ...record,
          status: 'completed',
          completionTime: this.now(),
          changedBlocks: own.length,
          checksum,
          progress: 100,
        });
        this.remember(this.ownMaps, record.id, own);
        area.pending.delete(record.id);
        await pending.journal.remove();
        return { status: 'completed' as const };
      } finally {
        pending.closed = false;
      }
    });
  }

  async listSnapshotBlocks(
    ctx: EbsContext,
    input: ListSnapshotBlocksInput,
  ): Promise<ListedBlocks<{ blockIndex: number; blockToken: string }>> {
    this.throttle(ctx, 'ListSnapshotBlocks');
    const max = checkMaxResults(input.maxResults);
    const area = await this.area(ctx);
    const record = this.completed(area, input.snapshotId);
    const scope = `list/${record.id}`;
    const start = this.startIndex(input.nextToken, scope, input.startingBlockIndex);
    const map = await this.resolve(area, record);
    const expiry = this.expiry();
    const from = lowerBound(map, start);
    const page = map.slice(from, from + max);
    const next = map[from + max];
    return {
      blocks: page.map(([index, digest]) => ({
        blockIndex: index,
        blockToken: this.signer.blockToken(record.id, index, digest, expiry),
      })),
      expiryTime: new Date(expiry * 1000),
      volumeSize: record.volumeSize,
      blockSize: BLOCK_SIZE,
      ...(next === undefined ? {} : { nextToken: this.signer.pageToken(scope, next[0]) }),
    };
  }

  /**
   * The blocks whose contents differ between two snapshots of one lineage
   * (the same root snapshot), or, given only the second, between it and its
   * parent: an index is listed when one side has no block there or the two
   * blocks' SHA-256s differ.
   */
  async listChangedBlocks(
    ctx: EbsContext,
    input: ListChangedBlocksInput,
  ): Promise<ListedBlocks<ChangedBlock>> {
    this.throttle(ctx, 'ListChangedBlocks');
    const max = checkMaxResults(input.maxResults);
    const area = await this.area(ctx);
    const second = this.completed(area, input.secondSnapshotId, 'SecondSnapshotId');
    const first =
      input.firstSnapshotId === undefined
        ? undefined
        : this.completed(area, input.firstSnapshotId, 'FirstSnapshotId');
    if (first !== undefined && this.lineageRoot(area, first) !== this.lineageRoot(area, second)) {
      throw invalid(
        'UNRELATED_SNAPSHOTS',
        `The snapshots '${first.id}' and '${second.id}' are not of the same lineage.`,
      );
    }
    const scope = `changed/${first?.id ?? ''}/${second.id}`;
    const start = this.startIndex(input.nextToken, scope, input.startingBlockIndex);
    const secondMap = await this.resolve(area, second);
    let base: BlockMap = [];
    if (first !== undefined) base = await this.resolve(area, first);
    else if (second.parentId !== null) {
      base = await this.resolve(area, area.records.get(second.parentId)!);
    }
    const diff = differences(base, secondMap);
    const expiry = this.expiry();
    const from = diff.findIndex((d) => d.index >= start);
    const at = from < 0 ? diff.length : from;
    const page = diff.slice(at, at + max);
    const next = diff[at + max];
    return {
      blocks: page.map((d) => ({
        blockIndex: d.index,
        ...(d.first === undefined || first === undefined
          ? {}
          : { firstBlockToken: this.signer.blockToken(first.id, d.index, d.first, expiry) }),
        ...(d.second === undefined
          ? {}
          : { secondBlockToken: this.signer.blockToken(second.id, d.index, d.second, expiry) }),
      })),
      expiryTime: new Date(expiry * 1000),
      volumeSize: second.volumeSize,
      blockSize: BLOCK_SIZE,
      ...(next === undefined ? {} : { nextToken: this.signer.pageToken(scope, next.index) }),
    };
  }

  async getSnapshotBlock(ctx: EbsContext, input: GetSnapshotBlockInput): Promise<SnapshotBlock> {
    this.throttle(ctx, 'GetSnapshotBlock');
    const area = await this.area(ctx);
    const record = this.completed(area, input.snapshotId);
    checkBlockIndex(input.blockIndex, record.volumeSize);
    const map = await this.resolve(area, record);
    const entry = map[lowerBound(map, input.blockIndex)];
    const digest = entry?.[0] === input.blockIndex ? entry[1] : null;
    const expiry =
      digest === null
        ? null
        : this.signer.checkBlockToken(input.blockToken, record.id, input.blockIndex, digest);
    if (digest === null || expiry === null) {
      throw invalid(
        'INVALID_BLOCK_TOKEN',
        `The block token is not valid for block ${input.blockIndex} of snapshot '${record.id}'.`,
      );
    }
    if (expiry * 1000 < this.now()) {
      throw invalid('INVALID_BLOCK_TOKEN', 'The block token has expired.');
    }
    const data = await this.blocks.read(digest);
    if (data.length !== BLOCK_SIZE || blockDigest(data) !== digest) {
      throw new EbsError(
        'InternalServerException',
        `The stored block ${input.blockIndex} of snapshot '${record.id}' is damaged.`,
      );
    }
    return {
      data,
      dataLength: BLOCK_SIZE,
      checksum: Buffer.from(digest, 'hex').toString('base64'),
      checksumAlgorithm: 'SHA256',
    };
  }

  // ---- Queries for EC2 ----------------------------------------------------

  /** Every snapshot of the account in the region (timed-out ones reported as error). */
  async listSnapshots(ctx: EbsContext): Promise<SnapshotInfo[]> {
    const area = await this.area(ctx);
    const out: SnapshotInfo[] = [];
    for (const r of [...area.records.values()]) {
      if (r.deleted !== null) continue;
      out.push(this.info(area, await this.expireIfDue(area, r)));
    }
    return out.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  }

  async getSnapshot(ctx: EbsContext, snapshotId: string): Promise<SnapshotInfo | undefined> {
    const area = await this.area(ctx);
    const r = area.records.get(snapshotId);
    if (r === undefined || r.deleted !== null) return undefined;
    return this.info(area, await this.expireIfDue(area, r));
  }

  /** Replaces a snapshot's tags (EC2 CreateTags and DeleteTags); the caller checks them. */
  async setTags(
    ctx: EbsContext,
    snapshotId: string,
    tags: readonly SnapshotTag[],
  ): Promise<SnapshotInfo> {
    const area = await this.area(ctx);
    return this.locked(`${area.dir}/${snapshotId}`, async () => {
      const r = await this.expireIfDue(area, this.live(area, snapshotId));
      const next = { ...r, tags: tags.map((t) => ({ key: t.key, value: t.value })) };
      await saveRecord(area, next);
      return this.info(area, next);
    });
  }

  /**
   * Changes a snapshot's tags atomically with respect to other tag changes
   * (EC2 CreateTags reads the current tags and adds to them).
   */
  async updateTags(
    ctx: EbsContext,
    snapshotId: string,
    change: (tags: readonly SnapshotTag[]) => readonly SnapshotTag[],
  ): Promise<SnapshotInfo> {
    const area = await this.area(ctx);
    return this.locked(`${area.dir}/${snapshotId}`, async () => {
      const r = await this.expireIfDue(area, this.live(area, snapshotId));
      const tags = change(r.tags).map((t) => ({ key: t.key, value: t.value }));
      const next = { ...r, tags };
      await saveRecord(area, next);
      return this.info(area, next);
    });
  }

  /** A completed snapshot's blocks, index to SHA-256 hex (its parents' included). */
  async snapshotBlocks(ctx: EbsContext, snapshotId: string): Promise<BlockMap> {
    const area = await this.area(ctx);
    return this.resolve(area, this.completed(area, snapshotId));
  }

  /** Reads one block of a completed snapshot by index (zeros where it has none). */
  async readBlock(ctx: EbsContext, snapshotId: string, index: number): Promise<Buffer> {
    const map = await this.snapshotBlocks(ctx, snapshotId);
    const e = map[lowerBound(map, index)];
    return e?.[0] === index ? this.blocks.read(e[1]) : Buffer.alloc(BLOCK_SIZE);
  }

  /**
   * Deletes a snapshot (ResourceNotFoundException if there is none,
   * ConflictException if an in-use guard names a user). A child's blocks
   * stay readable: a deleted parent is kept, hidden, while a child needs it.
   */
  async deleteSnapshot(ctx: EbsContext, snapshotId: string): Promise<void> {
    checkSnapshotId(snapshotId);
    const area = await this.area(ctx);
    await this.locked(`${area.dir}/${snapshotId}`, async () => {
      const record = this.live(area, snapshotId);
      for (const guard of this.guards) {
        const user = await guard(ctx, snapshotId);
        if (user !== undefined) {
          throw new EbsError(
            'ConflictException',
            `The snapshot '${snapshotId}' is in use by ${user}.`,
          );
        }
      }
      const pending = area.pending.get(snapshotId);
      if (pending !== undefined) {
        pending.closed = true;
        if (pending.inflight > 0) await new Promise<void>((r) => pending.idle.push(r));
        area.pending.delete(snapshotId);
        await pending.journal.remove();
      }
      await saveRecord(area, { ...record, deleted: this.now() });
      await this.prune(area, snapshotId);
    });
  }

  /**
   * A completed copy of a snapshot, in this or another account or region,
   * that shares its blocks (nothing is copied but the block list).
   */
  async copySnapshot(
    from: EbsContext,
    snapshotId: string,
    to: EbsContext,
    options: {
      readonly description?: string;
      readonly tags?: readonly SnapshotTag[];
      readonly encrypted?: boolean;
      readonly kmsKeyArn?: string;
    } = {},
  ): Promise<SnapshotInfo> {
    const src = await this.area(from);
    const source = this.completed(src, snapshotId);
    const map = await this.resolve(src, source);
    const dest = await this.area(to);
    const encrypted =
      source.encrypted || options.encrypted === true || options.kmsKeyArn !== undefined;
    // KMS keys are regional and the source's may be another account's: a
    // copy keeps the source's key only within its account and region.
    const sameArea = from.account === to.account && from.region === to.region;
    const kept = source.encrypted && sameArea ? source.kmsKeyArn : null;
    const key = encrypted ? (options.kmsKeyArn ?? kept ?? (await this.defaultKey(to))) : null;
    let id: string;
    do id = `snap-${randomBytes(9).toString('hex').slice(0, 17)}`;
    while (dest.records.has(id));
    const now = this.now();
    await writeFileAtomic(mapPath(dest, id), encodeBlockMap(map));
    const record: SnapshotRecord = {
      format: 'ferry-ebs-snapshot',
      version: 1,
      id,
      owner: to.account,
      region: to.region,
      status: 'completed',
      statusMessage: null,
      volumeSize: source.volumeSize,
      parentId: null,
      description: options.description ?? source.description,
      tags: options.tags ?? [],
      encrypted,
      kmsKeyArn: key,
      timeoutMinutes: source.timeoutMinutes,
      startTime: now,
      completionTime: now,
      clientToken: null,
      requestFingerprint: null,
      changedBlocks: map.length,
      checksum: linearChecksum(map),
      progress: 100,
      deleted: null,
    };
    await saveRecord(dest, record);
    this.remember(this.ownMaps, id, map);
    return this.info(dest, record);
  }

  /**
   * Removes the blocks no snapshot refers to and last put more than
   * `graceSeconds` ago (a put may have stored a block it has not yet
   * recorded), then compacts the packs they leave mostly empty.
   */
  async collectGarbage(graceSeconds = 3600): Promise<{ removed: number; kept: number }> {
    const used = new Set<string>();
    const accounts = await readdir(join(this.root, 'accounts')).catch(() => [] as string[]);
    for (const account of accounts) {
      if (!ACCOUNT.test(account)) continue;
      for (const region of await readdir(join(this.root, 'accounts', account))) {
        if (!REGION.test(region)) continue;
        const area = await this.area({ account, region });
        for (const r of area.records.values()) {
          if (r.status === 'completed') for (const [, d] of await this.own(area, r.id)) used.add(d);
        }
        for (const p of area.pending.values()) for (const d of p.own.values()) used.add(d);
      }
    }
    let removed = 0;
    let kept = 0;
    const cutoff = this.now() - graceSeconds * 1000;
    for (const digest of await this.blocks.list()) {
      if (used.has(digest)) {
        kept++;
        continue;
      }
      // Put within the grace period (by this process, or as its pack records it): a put may be about to record it.
      if ((this.blocks.lastPut(digest) ?? 0) >= cutoff) {
        kept++;
        continue;
      }
      await this.blocks.remove(digest);
      removed++;
    }
    await this.blocks.compact();
    return { removed, kept };
  }

  // ---- Internals ----------------------------------------------------------

  private throttle(ctx: EbsContext, op: EbsOperation): void {
    this.limiter.take(ctx.account, ctx.region, op);
  }

  private async defaultKey(ctx: EbsContext): Promise<string> {
    if (this.options.defaultKmsKeyArn !== undefined) {
      return this.options.defaultKmsKeyArn(ctx.account, ctx.region);
    }
    const h = createHash('sha256').update(`${ctx.account}/${ctx.region}/aws/ebs`).digest('hex');
    const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    return `arn:aws:kms:${ctx.region}:${ctx.account}:key/${uuid}`;
  }

  private encryptsByDefault(ctx: EbsContext): boolean {
    return this.options.encryptionByDefault?.(ctx.account, ctx.region) ?? false;
  }

  private expiry(): number {
    const ttl = this.options.blockTokenTtlSeconds ?? DEFAULT_BLOCK_TOKEN_TTL_SECONDS;
    return Math.floor(this.now() / 1000) + ttl;
  }

  private startIndex(
    token: string | undefined,
    scope: string,
    starting: number | undefined,
  ): number {
    if (token === undefined) return checkStartingBlockIndex(starting);
    const next = this.signer.checkPageToken(token, scope);
    if (next === null)
      throw invalid('INVALID_PAGE_TOKEN', 'The NextToken is not valid for this listing.');
    return next;
  }

  /** Runs `fn` after every earlier holder of `key` finished. */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const chained = before.then(() => mine);
    this.locks.set(key, chained);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === chained) this.locks.delete(key);
    }
  }

  private area(ctx: EbsContext): Promise<Area> {
    if (!ACCOUNT.test(ctx.account) || !REGION.test(ctx.region)) {
      return Promise.reject(
        new EbsError(
          'InternalServerException',
          `Invalid account or region '${ctx.account}/${ctx.region}'.`,
        ),
      );
    }
    const key = `${ctx.account}/${ctx.region}`;
    let p = this.areas.get(key);
    if (p === undefined) {
      p = loadArea(this.root, { account: ctx.account, region: ctx.region });
      this.areas.set(key, p);
      p.catch(() => this.areas.delete(key));
    }
    return p;
  }

  /** A snapshot that exists and is not deleted, or ResourceNotFoundException. */
  private live(area: Area, id: string, what = 'SnapshotId'): SnapshotRecord {
    checkSnapshotId(id, what);
    const r = area.records.get(id);
    if (r === undefined || r.deleted !== null) throw snapshotNotFound(id);
    return r;
  }

  private completed(area: Area, id: string, what = 'SnapshotId'): SnapshotRecord {
    const r = this.live(area, id, what);
    const pending = r.status === 'pending' ? area.pending.get(id) : undefined;
    if (r.status !== 'completed') {
      const state = pending !== undefined && this.isDue(r, pending) ? 'error' : r.status;
      throw invalid('INVALID_SNAPSHOT_ID', `The snapshot '${id}' is ${state}, not completed.`);
    }
    return r;
  }

  private async pendingRecord(area: Area, id: string): Promise<SnapshotRecord> {
    const r = await this.expireIfDue(area, this.live(area, id));
    if (r.status === 'pending') return r;
    if (r.status === 'error' && r.statusMessage?.startsWith('timed out')) {
      throw invalid('WRITE_REQUEST_TIMEOUT', `The snapshot '${id}' ${r.statusMessage}.`);
    }
    throw notPending(id, r.status);
  }

  private isDue(r: SnapshotRecord, p: Pending): boolean {
    return p.inflight === 0 && this.now() >= p.lastActivity + r.timeoutMinutes * 60_000;
  }

  /** Moves a pending snapshot past its timeout to error; returns the current record. */
  private async expireIfDue(area: Area, r: SnapshotRecord): Promise<SnapshotRecord> {
    const p = r.status === 'pending' ? area.pending.get(r.id) : undefined;
    if (p === undefined || p.closed || !this.isDue(r, p)) return r;
    p.closed = true;
    area.pending.delete(r.id);
    const errored: SnapshotRecord = {
      ...r,
      status: 'error',
      statusMessage: `timed out: not completed within ${r.timeoutMinutes} minutes of its last write`,
      progress: p.progress < 0 ? 0 : p.progress,
    };
    await saveRecord(area, errored);
    await p.journal.remove();
    return errored;
  }

  private info(area: Area, r: SnapshotRecord): SnapshotInfo {
    const p = area.pending.get(r.id);
    return recordInfo(r, p?.own.size ?? 0, Math.max(0, p?.progress ?? r.progress));
  }

  /** The root of a snapshot's lineage (the oldest ancestor). */
  private lineageRoot(area: Area, r: SnapshotRecord): string {
    let cur = r;
    for (let i = 0; cur.parentId !== null; i++) {
      const parent = area.records.get(cur.parentId);
      if (parent === undefined || i > 100_000) break;
      cur = parent;
    }
    return cur.id;
  }

  private async own(area: Area, id: string): Promise<BlockMap> {
    const cached = this.ownMaps.get(id);
    if (cached !== undefined) return cached;
    const map = decodeBlockMap(await readFile(mapPath(area, id)));
    if (map === null) {
      throw new EbsError(
        'InternalServerException',
        `The block map of snapshot '${id}' is damaged.`,
      );
    }
    this.remember(this.ownMaps, id, map);
    return map;
  }

  /** A completed snapshot's blocks: its own laid over its parent's, recursively. */
  private async resolve(area: Area, r: SnapshotRecord): Promise<BlockMap> {
    const hit = this.resolved.get(r.id);
    if (hit !== undefined) {
      this.remember(this.resolved, r.id, hit);
      return hit;
    }
    const chain: SnapshotRecord[] = [];
    for (let cur: SnapshotRecord | undefined = r; cur !== undefined; ) {
      chain.unshift(cur);
      cur = cur.parentId === null ? undefined : area.records.get(cur.parentId);
    }
    let map: BlockMap = [];
    for (const c of chain) map = overlay(map, await this.own(area, c.id));
    const limit = r.volumeSize * BLOCKS_PER_GIB;
    if (map.length > 0 && map[map.length - 1]![0] >= limit) map = map.filter(([i]) => i < limit);
    this.remember(this.resolved, r.id, map);
    return map;
  }

  /** Caches a block map, dropping the least recently cached beyond the limit. */
  private remember(cache: Map<string, BlockMap>, id: string, map: BlockMap): void {
    cache.delete(id);
    cache.set(id, map);
    while (cache.size > MAP_CACHE) cache.delete(cache.keys().next().value!);
  }

  /** Removes a deleted snapshot's files when no child needs them, then its deleted parent's. */
  private async prune(area: Area, id: string): Promise<void> {
    for (let cur: string | null = id; cur !== null; ) {
      const r = area.records.get(cur);
      if (r === undefined || r.deleted === null) return;
      const needed = [...area.records.values()].some((c) => c.parentId === cur);
      if (needed) return;
      await unlink(mapPath(area, cur)).catch(() => {});
      await unlink(join(area.dir, 'snapshots', `${cur}.json`)).catch(() => {});
      area.records.delete(cur);
      this.ownMaps.delete(cur);
      this.resolved.delete(cur);
      cur = r.parentId;
    }
  }
}

function notPending(id: string, state: string): EbsError {
  return invalid('INVALID_SNAPSHOT_ID', `The snapshot '${id}' is ${state}, not pending.`);
}

function ownKeyOnly(ctx: EbsContext, keyArn: string): boolean {
  return keyArn.split(':')[4] === ctx.account;
}

interface HeldLock {
  release(): Promise<void>;
}

/** Takes the lock file at `path` (the store's lock protocol) and holds it until released. */
async function holdLock(path: string): Promise<HeldLock> {
  let acquired!: () => void;
  const ready = new Promise<void>((r) => {
    acquired = r;
  });
  let release!: () => void;
  const done = new Promise<void>((r) => {
    release = r;
  });
  const held = withLock(
    path,
    async () => {
      acquired();
      await done;
    },
    { timeoutMs: 0 },
  );
  await Promise.race([ready, held]);
  return {
    release: async () => {
      release();
      await held;
    },
  };
}
