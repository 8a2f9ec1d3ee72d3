import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { startServer } from './cloud-server.js';

const BLOCK = 524288;
const MiB = 1024 * 1024;
/** The random bytes blocks are cut from (distinct blocks without GiBs of memory). */
const POOL_BYTES = 64 * MiB;

interface Options {
  readonly mib: number;
  readonly clients: number;
  readonly runs: number;
  readonly json: boolean;
  readonly dir: string | undefined;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      mib: { type: 'string', default: '1024' },
      clients: { type: 'string', default: '64' },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      dir: { type: 'string' },
    },
  });
  const mib = Number(values.mib);
  const clients = Number(values.clients);
  const runs = Number(values.runs);
  if (!Number.isInteger(mib) || mib < 16 || mib % 16 !== 0)
    throw new Error('--mib must be a multiple of 16, at least 16');
  if (!Number.isInteger(clients) || clients < 1 || clients > 1024)
    throw new Error('--clients must be 1 to 1024');
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be at least 1');
  return { mib, clients, runs, json: values.json === true, dir: values.dir };
}

/** Block `index`: a slice of the pool with the index stamped over its first bytes. */
function makeBlock(pool: Buffer, index: number): Buffer {
  const block = Buffer.allocUnsafe(BLOCK);
  const at = (index * BLOCK) % POOL_BYTES;
  pool.copy(block, 0, at, at + BLOCK);
  block.writeUInt32BE(index, 0);
  return block;
}

/** Peak resident set of a process, from /proc (Linux). */
async function peakRssMib(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m === null ? null : Number(m[1]) / 1024;
  } catch {
    return null;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
}

/** The floor: SHA-256 of every block, one after another, in this process. */
function floorSeconds(pool: Buffer, blocks: number): number {
  const started = performance.now();
  for (let i = 0; i < blocks; i++) createHash('sha256').update(makeBlock(pool, i)).digest();
  return (performance.now() - started) / 1000;
}

interface UploadRun {
  readonly seconds: number;
  readonly latenciesMs: number[];
}

async function upload(
  endpoint: string,
  pool: Buffer,
  blocks: number,
  clientCount: number,
): Promise<UploadRun> {
  const config = {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const clients = Array.from(
    { length: clientCount },
    () =>
      new EBSClient({
        ...config,
        requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 1 }) },
      }),
  );
  const first = clients[0];
  if (first === undefined) throw new Error('no clients');
  const started = performance.now();
  const snap = await first.send(
    new StartSnapshotCommand({ VolumeSize: Math.ceil(blocks / 2048), Timeout: 60 }),
  );
  const snapshotId = snap.SnapshotId ?? '';
  const digests: Buffer[] = new Array(blocks);
  const latenciesMs: number[] = [];
  let next = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (;;) {
        const index = next++;
        if (index >= blocks) return;
        const block = makeBlock(pool, index);
        const digest = createHash('sha256').update(block).digest();
        digests[index] = digest;
        const t = performance.now();
        await client.send(
          new PutSnapshotBlockCommand({
            SnapshotId: snapshotId,
            BlockIndex: index,
            BlockData: block,
            DataLength: BLOCK,
            Checksum: digest.toString('base64'),
            ChecksumAlgorithm: 'SHA256',
          }),
        );
        latenciesMs.push(performance.now() - t);
      }
    }),
  );
  const aggregate = createHash('sha256').update(Buffer.concat(digests)).digest('base64');
  const done = await first.send(
    new CompleteSnapshotCommand({
      SnapshotId: snapshotId,
      ChangedBlocksCount: blocks,
      Checksum: aggregate,
      ChecksumAlgorithm: 'SHA256',
      ChecksumAggregationMethod: 'LINEAR',
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (done.Status !== 'completed' && done.Status !== 'pending')
    throw new Error(`CompleteSnapshot answered ${done.Status}`);
  for (const c of clients) c.destroy();
  return { seconds, latenciesMs };
}

async function main(): Promise<void> {
  const opts = options();
  const blocks = (opts.mib * MiB) / BLOCK;
  const work = await mkdtemp(join(opts.dir ?? tmpdir(), 'ferry-bench-cloud-'));
  const pool = randomBytes(POOL_BYTES);
  const server = await startServer(join(work, 'data'));
  try {
    const floors: number[] = [];
    const runs: UploadRun[] = [];
    for (let r = 0; r < opts.runs; r++) {
      floors.push(floorSeconds(pool, blocks));
      const run = await upload(server.endpoint, pool, blocks, opts.clients);
      runs.push(run);
      process.stderr.write(
        `bench: run ${r + 1}: upload ${run.seconds.toFixed(2)} s, floor ${floors[r]?.toFixed(2)} s\n`,
      );
    }
    const serverRss = await peakRssMib(server.child.pid ?? 0);
    const uploadS = median(runs.map((r) => r.seconds));
    const floorS = median(floors);
    const latencies = runs.flatMap((r) => r.latenciesMs);
    const result = {
      mib: opts.mib,
      blocks,
      clients: opts.clients,
      runs: opts.runs,
      uploadSeconds: uploadS,
      uploadMBps: (opts.mib * MiB) / 1e6 / uploadS,
      blocksPerSecond: blocks / uploadS,
      floorSeconds: floorS,
      floorMBps: (opts.mib * MiB) / 1e6 / floorS,
      ratio: floorS / uploadS,
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
      serverPeakRssMib: serverRss,
      clientPeakRssMib: process.resourceUsage().maxRSS / 1024,
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const row = (k: string, v: string) => process.stdout.write(`${k.padEnd(34)}${v}\n`);
      row('volume', `${opts.mib} MiB (${blocks} blocks of 512 KiB, incompressible)`);
      row('clients', `${opts.clients} EBSClient (SDK v3), one socket each`);
      row('PutSnapshotBlock (median)', `${uploadS.toFixed(2)} s`);
      row(
        '  throughput',
        `${result.uploadMBps.toFixed(0)} MB/s, ${result.blocksPerSecond.toFixed(0)} blocks/s`,
      );
      row(
        '  latency p50 / p99',
        `${result.latencyMs.p50.toFixed(1)} / ${result.latencyMs.p99.toFixed(1)} ms`,
      );
      row('floor: SHA-256 (median)', `${floorS.toFixed(2)} s, ${result.floorMBps.toFixed(0)} MB/s`);
      row('ratio (floor time / upload time)', result.ratio.toFixed(2));
      row('server peak RSS', serverRss === null ? '?' : `${serverRss.toFixed(0)} MiB`);
      row('bench process peak RSS', `${result.clientPeakRssMib.toFixed(0)} MiB`);
    }
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await rm(work, { recursive: true, force: true });
  }
}

await main();
