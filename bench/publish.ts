/**
 * bench/publish: `ferry publish` of a ~2 GiB revision (the tree bench/render
 * uses) on the local cloud, as a user runs it (the CLI, `--output json`, the
 * final `{"type":"result",...}` line parsed), against the floor measured in
 * the same run: one read of the rendered raw image (buffered or direct,
 * whichever is faster) and a SHA-256 of each 512 KiB block (the least any
 * EBS direct upload must do before a block leaves). Cases:
 *   (a) 1 target x 1 region, full;
 *   (b) 2 accounts x 4 regions, full (its own state directory and cloud, so
 *       nothing is incremental);
 *   (c) the ~1 % revision published to (a)'s setup: bytes sent against (a).
 * The render (the result's render.seconds) is reported apart from the upload
 * (the rest of the publish: digests, placements).
 *
 *   npm run bench:publish [-- --extra-mib 1600 --dir DIR --json --no-drop-caches --serve]
 *
 * With --serve the cloud runs as its own process (`ferry cloud serve`) and the
 * targets name its URL, so the publish process's peak RSS and CPU are the
 * client's alone; by default it is `endpoint: local`, in the publish process.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { alignedMemory } from '../src/disk/direct-io.js';
import { buildBenchTree, canDrop, changeOnePercent, MiB, seconds, settle } from './bench-tree.js';
import { type Server, startServer } from './cloud-server.js';
import { cliNodeArgs, FERRY_CLI } from './ferry-cli.js';

const BLOCK = 512 * 1024;
const haveTime = spawnSync('sh', ['-c', 'test -x /usr/bin/time']).status === 0;
const ACCOUNT_B = {
  id: '111111111111',
  accessKeyId: 'AKIAFERRYBENCHB00001',
  secretAccessKey: 'ferry-bench-account-b-secret',
};
const REGIONS4 = ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2'];

interface Options {
  readonly extraMib: number;
  readonly dir: string | undefined;
  readonly json: boolean;
  readonly drop: boolean;
  readonly serve: boolean;
  readonly concurrency: number | undefined;
  readonly keep: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      'extra-mib': { type: 'string', default: '1600' },
      dir: { type: 'string' },
      json: { type: 'boolean' },
      'no-drop-caches': { type: 'boolean' },
      serve: { type: 'boolean' },
      concurrency: { type: 'string' },
      keep: { type: 'boolean' },
    },
  });
  return {
    extraMib: Number(values['extra-mib']),
    dir: values.dir,
    json: values.json === true,
    drop: values['no-drop-caches'] !== true && canDrop(),
    serve: values.serve === true,
    concurrency: values.concurrency === undefined ? undefined : Number(values.concurrency),
    keep: values.keep === true,
  };
}

interface PlacementJson {
  key: string;
  state: string;
  seconds: number;
  error: { code: string; message: string } | null;
  outcome: {
    imageId: string;
    existing: boolean;
    parentSnapshotId: string | null;
    blocksSent: number;
    blocksSkipped: number;
    bytesSent: number;
  } | null;
}

interface ResultJson {
  type: 'result';
  ok: boolean;
  seconds: number;
  render: {
    path: string;
    bytes: number;
    seconds: number;
    reused: boolean;
    base: string | null;
    changedChunks: number;
    totalChunks: number;
  } | null;
  placements: PlacementJson[];
  ingested: { revision: string; unchanged: boolean; files: number } | null;
}

interface CaseFigures {
  readonly name: string;
  readonly placements: number;
  /** The CLI's wall time, start-up and ingest included. */
  readonly wallSeconds: number;
  /** The publish call (render, digests, placements). */
  readonly publishSeconds: number;
  readonly renderSeconds: number;
  /** publishSeconds - renderSeconds: digests and every placement. */
  readonly uploadSeconds: number;
  /** The slowest placement. */
  readonly slowestPlacementSeconds: number;
  readonly bytesSentPerPlacement: number[];
  readonly blocksSentPerPlacement: number[];
  readonly blocksSkippedPerPlacement: number[];
  readonly incremental: boolean;
  readonly peakRssKiB: number | null;
  /** User + system CPU seconds of the publish process (GNU time), ingest and render included. */
  readonly cpuSeconds: number | null;
  readonly imagePath: string;
  readonly imageBytes: number;
  readonly changedChunks: number | null;
}

/** One `ferry publish bench --output json` in `cwd`, timed, under GNU time when present. */
function publishOnce(cwd: string, name: string, concurrency: number | undefined): CaseFigures {
  const args = [
    FERRY_CLI,
    'publish',
    'bench',
    '--output',
    'json',
    ...(concurrency === undefined ? [] : ['--concurrency', String(concurrency)]),
  ];
  const nodeArgs = [
    ...cliNodeArgs(),
    ...(process.env.FERRY_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
  ];
  const cmd = haveTime ? '/usr/bin/time' : process.execPath;
  const full = haveTime
    ? ['-f', 'FERRY-RSS %M FERRY-CPU %U %S', process.execPath, ...nodeArgs, ...args]
    : [...nodeArgs, ...args];
  let r!: ReturnType<typeof spawnSync>;
  const wall = seconds(() => {
    r = spawnSync(cmd, full, { cwd, encoding: 'utf8', maxBuffer: 256 * MiB });
  });
  const stdout = String(r.stdout);
  const stderr = String(r.stderr);
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"type":"result"'));
  if (line === undefined)
    throw new Error(`ferry publish (${name}) gave no result (exit ${r.status}): ${stderr}`);
  const result = JSON.parse(line) as ResultJson;
  if (!result.ok)
    throw new Error(
      `ferry publish (${name}) failed: ${result.placements
        .map((p) => `${p.key}: ${p.error?.code ?? ''} ${p.error?.message ?? ''}`)
        .join('; ')}`,
    );
  const m = /FERRY-RSS (\d+)/.exec(stderr);
  const cpu = /FERRY-CPU ([\d.]+) ([\d.]+)/.exec(stderr);
  const outcomes = result.placements.map((p) => p.outcome!);
  const renderS = result.render?.seconds ?? 0;
  return {
    name,
    placements: result.placements.length,
    wallSeconds: wall,
    publishSeconds: result.seconds,
    renderSeconds: renderS,
    uploadSeconds: result.seconds - renderS,
    slowestPlacementSeconds: Math.max(...result.placements.map((p) => p.seconds)),
    bytesSentPerPlacement: outcomes.map((o) => o.bytesSent),
    blocksSentPerPlacement: outcomes.map((o) => o.blocksSent),
    blocksSkippedPerPlacement: outcomes.map((o) => o.blocksSkipped),
    incremental: outcomes.some((o) => o.parentSnapshotId !== null),
    peakRssKiB: m === null ? null : Number(m[1]),
    cpuSeconds: cpu === null ? null : Number(cpu[1]) + Number(cpu[2]),
    imagePath: result.render?.path ?? '',
    imageBytes: result.render?.bytes ?? 0,
    changedChunks: result.render?.base === null ? null : (result.render?.changedChunks ?? null),
  };
}

/**
 * The floor: one sequential read of the image and a SHA-256 per 512 KiB
 * block, on one core; read through the page cache, or past it (O_DIRECT into
 * page-aligned memory). The bench takes the faster of the two, each from a
 * cold cache: on a VM that hands freed memory back to its host, filling fresh
 * page-cache pages can cost more than the read itself (docs/benchmarks.md).
 */
function floorOf(
  path: string,
  direct: boolean,
): { seconds: number; bytes: number; blocks: number } {
  const buf = direct ? Buffer.from(alignedMemory(BLOCK), 0, BLOCK) : Buffer.allocUnsafe(BLOCK);
  let bytes = 0;
  let blocks = 0;
  const s = seconds(() => {
    const fd = openSync(path, direct ? constants.O_RDONLY | constants.O_DIRECT : 'r');
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, BLOCK, bytes);
        if (n === 0) break;
        createHash('sha256').update(buf.subarray(0, n)).digest();
        bytes += n;
        blocks++;
        if (n < BLOCK) break;
      }
    } finally {
      closeSync(fd);
    }
  });
  return { seconds: s, bytes, blocks };
}

/** Stops a server; its peak RSS (KiB) and user + system CPU seconds, when /proc tells. */
async function stopServer(
  s: Server,
): Promise<{ rssKiB: number | null; cpuSeconds: number | null }> {
  let rssKiB: number | null = null;
  let cpuSeconds: number | null = null;
  try {
    const status = await readFile(`/proc/${s.child.pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    rssKiB = m === null ? null : Number(m[1]);
    // Fields 14 and 15 of stat (after the parenthesised name): utime and stime, in ticks of 1/100 s.
    const stat = await readFile(`/proc/${s.child.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpuSeconds = (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    // not Linux
  }
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  await exited;
  return { rssKiB, cpuSeconds };
}

function configFor(tree: string, store: string, endpoint: string, eight: boolean): string {
  const target = (name: string, key: string, secret: string, regions: string[]) =>
    `  ${name}:
    type: aws
    endpoint: ${endpoint}
    credentials: {accessKeyId: ${key}, secretAccessKey: ${secret}}
    regions: [${regions.join(', ')}]
    encryption: none
    tags: {owner: bench}
`;
  return `# Written by bench/publish.
store: ${store}
state: ./state
streams:
  bench:
    source: ${tree}
    layout: disk
    boot: none
targets:
${
  eight
    ? target('account-a', 'test', 'test', REGIONS4) +
      target('account-b', ACCOUNT_B.accessKeyId, ACCOUNT_B.secretAccessKey, REGIONS4)
    : target('account-a', 'test', 'test', ['us-east-1'])
}`;
}

/** A directory with ferry.yaml and the cloud's accounts; the cloud is in-process or its own. */
async function setup(
  dir: string,
  tree: string,
  store: string,
  eight: boolean,
  serve: boolean,
): Promise<Server | null> {
  const cloud = join(dir, 'state', 'cloud');
  await mkdir(cloud, { recursive: true });
  await writeFile(
    join(cloud, 'config.json'),
    `${JSON.stringify({ accounts: [ACCOUNT_B] }, null, 2)}\n`,
  );
  const server = serve ? await startServer(cloud) : null;
  await writeFile(
    join(dir, 'ferry.yaml'),
    configFor(tree, store, server?.endpoint ?? 'local', eight),
  );
  return server;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  const o = options();
  const work = await mkdtemp(join(o.dir ?? tmpdir(), 'ferry-bench-publish-'));
  const servers: Server[] = [];
  const serverRss: Record<string, number | null> = {};
  const serverCpu: Record<string, number | null> = {};
  try {
    const t = await buildBenchTree(join(work, 'tree'), o.extraMib);
    process.stderr.write(`bench: tree: ${t.files} files, ${(t.bytes / MiB).toFixed(0)} MiB\n`);
    const store = join(work, 'store');
    const one = join(work, 'one');
    const eight = join(work, 'eight');
    await mkdir(one);
    await mkdir(eight);

    // (a) 1 target x 1 region, full (ingest and render included in the wall time).
    const sa = await setup(one, t.tree, store, false, o.serve);
    if (sa !== null) servers.push(sa);
    settle(o.drop);
    const a = publishOnce(one, 'a', o.concurrency);
    process.stderr.write(
      `bench: (a) ${a.wallSeconds.toFixed(2)} s (render ${a.renderSeconds.toFixed(2)}, upload ${a.uploadSeconds.toFixed(2)})\n`,
    );
    // The floor, on the image (a) published.
    settle(o.drop);
    const buffered = floorOf(a.imagePath, false);
    settle(o.drop);
    const direct = floorOf(a.imagePath, true);
    const floor = direct.seconds < buffered.seconds ? direct : buffered;
    process.stderr.write(
      `bench: floor ${floor.seconds.toFixed(2)} s (buffered ${buffered.seconds.toFixed(2)}, direct ${direct.seconds.toFixed(2)})\n`,
    );

    // (b) 2 accounts x 4 regions, full: its own state (render, digests, cloud); the store is shared.
    const sb = await setup(eight, t.tree, store, true, o.serve);
    if (sb !== null) servers.push(sb);
    settle(o.drop);
    const b = publishOnce(eight, 'b', o.concurrency);
    if (sb !== null) {
      servers.splice(servers.indexOf(sb), 1);
      ({ rssKiB: serverRss.b, cpuSeconds: serverCpu.b } = await stopServer(sb));
    }
    await rm(join(eight, 'state'), { recursive: true, force: true });
    process.stderr.write(
      `bench: (b) ${b.wallSeconds.toFixed(2)} s (render ${b.renderSeconds.toFixed(2)}, upload ${b.uploadSeconds.toFixed(2)})\n`,
    );

    // (c) the ~1 % revision to (a)'s setup: incremental render and upload.
    const changed = await changeOnePercent(t);
    settle(o.drop);
    const c = publishOnce(one, 'c', o.concurrency);
    if (sa !== null) {
      servers.splice(servers.indexOf(sa), 1);
      ({ rssKiB: serverRss.a, cpuSeconds: serverCpu.a } = await stopServer(sa));
    }
    process.stderr.write(
      `bench: (c) ${c.wallSeconds.toFixed(2)} s (render ${c.renderSeconds.toFixed(2)}, upload ${c.uploadSeconds.toFixed(2)})\n`,
    );

    const goals = {
      singleWithin2xFloor: a.uploadSeconds / floor.seconds,
      eightWithin3xSingle: b.uploadSeconds / a.uploadSeconds,
      incrementalBytesShare: sum(c.bytesSentPerPlacement) / sum(a.bytesSentPerPlacement),
    };
    const met = {
      singleWithin2xFloor: goals.singleWithin2xFloor <= 2,
      eightWithin3xSingle: goals.eightWithin3xSingle <= 3,
      incrementalBytesShare: goals.incrementalBytesShare <= 0.03,
    };
    const result = {
      files: t.files,
      treeBytes: t.bytes,
      rootfs: t.rootfs,
      dropCaches: o.drop,
      cloud: o.serve
        ? 'ferry cloud serve (own process)'
        : 'endpoint: local (in the publish process)',
      floor,
      cases: { a, b, c },
      changedFiles: changed.count,
      goals,
      met,
      serverPeakRssKiB: serverRss,
      serverCpuSeconds: serverCpu,
    };
    if (o.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const f = (x: number) => x.toFixed(2);
    const mib = (x: number) => `${(x / MiB).toFixed(0)} MiB`;
    const rss = (k: number | null) => (k === null ? '?' : `${(k / 1024).toFixed(0)} MiB`);
    const per = (xs: number[]) => (new Set(xs).size === 1 ? String(xs[0]) : xs.join('/'));
    const row = (label: string, x: CaseFigures) =>
      `| ${label} | ${f(x.wallSeconds)} | ${f(x.renderSeconds)} | ${f(x.uploadSeconds)} | ${f(x.slowestPlacementSeconds)} | ${per(x.bytesSentPerPlacement.map((v) => Number((v / MiB).toFixed(1))))} | ${per(x.blocksSentPerPlacement)} | ${per(x.blocksSkippedPerPlacement)} | ${rss(x.peakRssKiB)} | ${x.cpuSeconds === null ? '?' : f(x.cpuSeconds)} |`;
    const yes = (b: boolean) => (b ? 'met' : 'MISSED');
    process.stdout.write(
      `${[
        `tree: ${t.files} files, ${mib(t.bytes)}; image ${mib(a.imageBytes)}; page cache ${o.drop ? 'dropped' : 'kept'} before each timed step; cloud: ${result.cloud}`,
        '',
        '| case | wall s | render s | upload s | slowest placement s | MiB sent per placement | blocks sent | blocks skipped | peak RSS | CPU s |',
        '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
        `| floor: read + SHA-256 per 512 KiB block | ${f(floor.seconds)} | | | | ${mib(floor.bytes)} read | ${floor.blocks} | | | |`,
        row('(a) 1 target x 1 region, full', a),
        row(`(b) 2 accounts x 4 regions, full`, b),
        row(`(c) ~1 % revision (${changed.count} files) to (a)`, c),
        '',
        `- single target, upload / floor: ${f(goals.singleWithin2xFloor)} (goal <= 2: ${yes(met.singleWithin2xFloor)})`,
        `- 8 placements, upload / single target's: ${f(goals.eightWithin3xSingle)} (goal <= 3: ${yes(met.eightWithin3xSingle)})`,
        `- incremental bytes / full: ${(goals.incrementalBytesShare * 100).toFixed(2)} % (goal <= 3 %: ${yes(met.incrementalBytesShare)}); render: ${c.changedChunks ?? '?'} chunks changed`,
        ...(o.serve
          ? [
              `- server peak RSS: (a)+(c) ${rss(serverRss.a ?? null)}, (b) ${rss(serverRss.b ?? null)}; server CPU s: (a)+(c) ${serverCpu.a?.toFixed(2) ?? '?'}, (b) ${serverCpu.b?.toFixed(2) ?? '?'}`,
            ]
          : []),
      ].join('\n')}\n`,
    );
  } finally {
    for (const s of servers) await stopServer(s).catch(() => {});
    if (!o.keep) await rm(work, { recursive: true, force: true });
    else process.stderr.write(`bench: kept ${work}\n`);
  }
}

await main();
