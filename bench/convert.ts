/**
 * Benchmark: `ferry convert` against `qemu-img convert` on a sparse raw image
 * about half allocated (2 GiB by default): pseudo-random data in 1-4 MiB runs,
 * explicitly written zero runs and holes.
 *
 *   npm run bench:convert -- [--size 2G] [--runs 3] [--cases raw-qcow2,...|all]
 *                            [--dir DIR] [--keep] [--json]
 *                            [--no-drop-caches] [--no-qemu-sync]
 *
 * Each case runs each tool once to warm up, then N timed runs per tool in
 * alternating order (ferry first on even runs, qemu-img first on odd ones),
 * and reports the median wall time and the largest peak RSS. Peak RSS comes
 * from GNU time (`/usr/bin/time -f`, Debian package `time`, which
 * scripts/setup.sh installs); without it RSS shows as "?".
 *
 * Fairness: before every timed run the bench calls sync(1) and, when
 * /proc/sys/vm/drop_caches is writable (root), drops the page cache, so both
 * tools read the source cold and no dirty pages of an earlier run are being
 * written back. ferry fsyncs its output before renaming it into place;
 * qemu-img's convert leaves its output unflushed (cache=unsafe), so the bench
 * adds the time of `sync OUTPUT` to qemu-img's time (--no-qemu-sync to not).
 * Each ferry output is checked identical to the source with `qemu-img compare`.
 * A case whose ferry reader or writer is not implemented yet shows "n/a".
 */

import { type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { accessSync, constants, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ferryArgs } from './ferry-cli.js';

const MiB = 1024 * 1024;
const GNU_TIME = '/usr/bin/time';
const DROP_CACHES = '/proc/sys/vm/drop_caches';

type Fmt = 'raw' | 'qcow2' | 'vmdk' | 'vhd' | 'vhdx';

interface Case {
  readonly name: string;
  readonly from: 'raw' | 'qcow2';
  readonly to: Fmt;
  readonly ferryArgs: readonly string[];
  readonly qemuArgs: readonly string[];
  /** qemu-img's name for the output format (vhd is "vpc"). */
  readonly qemuFormat: string;
}

const CASES: readonly Case[] = [
  { name: 'raw-qcow2', from: 'raw', to: 'qcow2', ferryArgs: [], qemuArgs: [], qemuFormat: 'qcow2' },
  { name: 'qcow2-raw', from: 'qcow2', to: 'raw', ferryArgs: [], qemuArgs: [], qemuFormat: 'raw' },
  {
    name: 'raw-vmdk',
    from: 'raw',
    to: 'vmdk',
    ferryArgs: [],
    qemuArgs: ['-o', 'subformat=streamOptimized'],
    qemuFormat: 'vmdk',
  },
  {
    name: 'raw-vhd',
    from: 'raw',
    to: 'vhd',
    ferryArgs: ['--subformat', 'dynamic'],
    qemuArgs: ['-o', 'subformat=dynamic'],
    qemuFormat: 'vpc',
  },
  { name: 'raw-vhdx', from: 'raw', to: 'vhdx', ferryArgs: [], qemuArgs: [], qemuFormat: 'vhdx' },
  {
    name: 'qcow2-vmdk',
    from: 'qcow2',
    to: 'vmdk',
    ferryArgs: [],
    qemuArgs: ['-o', 'subformat=streamOptimized'],
    qemuFormat: 'vmdk',
  },
  // Not run by default: a baseline of plain sparse copying (SEEK_DATA on the source).
  { name: 'raw-raw', from: 'raw', to: 'raw', ferryArgs: [], qemuArgs: [], qemuFormat: 'raw' },
];
const DEFAULT_CASES = CASES.filter((c) => c.name !== 'raw-raw');

interface RunResult {
  readonly ok: boolean;
  readonly seconds: number;
  /** Peak resident set size of the process, KiB (from GNU time). */
  readonly rssKiB: number | undefined;
  readonly cpuSeconds: number | undefined;
  readonly stderr: string;
}

interface ToolSummary {
  readonly seconds: number[];
  readonly median: number;
  readonly rssKiB: number | undefined;
  readonly cpuSeconds: number | undefined;
  /** qemu-img only: the median time of `sync OUTPUT` included in `median`. */
  readonly syncSeconds?: number;
}

interface CaseResult {
  readonly name: string;
  readonly status: 'ok' | 'n/a' | 'error';
  readonly reason?: string;
  readonly ferry?: ToolSummary;
  readonly qemu?: ToolSummary;
  /** ferry speed / qemu-img speed (above 1: ferry is faster). */
  readonly ratio?: number;
  /** `qemu-img compare` of the source and ferry's output. */
  readonly identical?: boolean;
}

function usage(message?: string): never {
  if (message !== undefined) console.error(`bench: ${message}`);
  console.error(
    'Usage: node dist/bench/convert.js [--size 2G] [--runs 3] [--cases a,b] [--dir DIR]\n' +
      '                                 [--keep] [--json] [--no-drop-caches] [--no-qemu-sync]\n' +
      `Cases: ${CASES.map((c) => c.name).join(', ')}`,
  );
  process.exit(2);
}

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$/i.exec(text.trim());
  if (m === null) usage(`cannot read size "${text}"`);
  const unit = { '': 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[
    (m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g' | 't'
  ];
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n < 64 * MiB) usage('--size must be at least 64M');
  return n;
}

/** A small deterministic PRNG (mulberry32) for the layout. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic incompressible bytes: AES-128-CTR over zeros (fast). */
function randomBuffer(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16, seed & 0xff);
  key.writeUInt32BE(seed >>> 0, 0);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(length)), c.final()]);
}

/**
 * Writes the sparse source: 1-4 MiB runs (4 KiB multiples, so runs straddle
 * clusters and grains) of random data (~45%), written zeros (~10%) or holes.
 * Reuses four random buffers, so generation runs at disk speed.
 */
async function makeSource(path: string, size: number): Promise<{ dataBytes: number }> {
  const pool = [0, 1, 2, 3].map((i) => randomBuffer(4 * MiB, 0x5eed + i));
  const zeros = Buffer.alloc(4 * MiB);
  const rand = prng(42);
  const fh = await open(path, 'w');
  let dataBytes = 0;
  try {
    await fh.truncate(size);
    for (let off = 0, i = 0; off < size; i++) {
      const len = Math.min(size - off, (256 + Math.floor(rand() * 769)) * 4096);
      const r = rand();
      if (r < 0.55) {
        const buf = r < 0.45 ? pool[i % pool.length]! : zeros;
        await fh.write(buf, 0, len, off);
        dataBytes += len;
      }
      off += len;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { dataBytes };
}

function hasGnuTime(): boolean {
  try {
    accessSync(GNU_TIME, constants.X_OK);
    return spawnSync(GNU_TIME, ['-f', '%M', 'true'], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
}

function canDropCaches(): boolean {
  try {
    accessSync(DROP_CACHES, constants.W_OK);
    spawnSync('sync');
    writeFileSync(DROP_CACHES, '1\n');
    return true;
  } catch {
    return false;
  }
}

/**
 * KiB of free guest memory the kernel has reported to the host so far
 * (virtio-balloon free page reporting, as on Firecracker VMs), or undefined
 * where it is not reported. Reported pages are handed back to the host, so
 * the next use of each costs a host fault: a run during which much is
 * reported, or that starts after the memory freed by a cache drop was
 * reported, pays it for every fresh page-cache page (measured: 1 GiB of
 * buffered writes 0.35 s before the report, 17-18 s after).
 */
const REPORTED_KIB = '/sys/module/page_reporting/parameters/reported_kib';
function reportedKiB(): number | undefined {
  try {
    const n = Number(readFileSync(REPORTED_KIB, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Flushes dirty pages and, when allowed, empties the page cache. */
function settle(dropCaches: boolean): void {
  spawnSync('sync');
  if (dropCaches) writeFileSync(DROP_CACHES, '1\n');
}

/** Runs a command (under GNU time when present), measuring wall time and peak RSS. */
async function measure(cmd: string, args: readonly string[], timeFile: string | undefined) {
  const [file, argv] =
    timeFile === undefined
      ? [cmd, [...args]]
      : [GNU_TIME, ['-f', '%M %U %S', '-o', timeFile, cmd, ...args]];
  const options: SpawnOptions = { stdio: ['ignore', 'ignore', 'pipe'] };
  const started = performance.now();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(file, argv, options);
      let err = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (s: string) => {
        if (err.length < 64 * 1024) err += s;
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stderr: err }));
    },
  );
  const seconds = (performance.now() - started) / 1000;
  let rssKiB: number | undefined;
  let cpuSeconds: number | undefined;
  if (timeFile !== undefined) {
    const text = await readFile(timeFile, 'utf8').catch(() => '');
    // GNU time prefixes "Command exited with non-zero status N" when it fails.
    const last = text.trim().split('\n').pop() ?? '';
    const [m, u, s] = last.split(' ').map(Number);
    if (m !== undefined && Number.isFinite(m)) rssKiB = m;
    if (u !== undefined && s !== undefined && Number.isFinite(u + s)) cpuSeconds = u + s;
  }
  return { ok: code === 0, seconds, rssKiB, cpuSeconds, stderr };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function summarize(runs: readonly RunResult[], syncs?: readonly number[]): ToolSummary {
  const rss = runs.map((r) => r.rssKiB).filter((x): x is number => x !== undefined);
  const cpu = runs.map((r) => r.cpuSeconds).filter((x): x is number => x !== undefined);
  const seconds = runs.map((r) => r.seconds);
  return {
    seconds,
    median: median(seconds),
    rssKiB: rss.length > 0 ? Math.max(...rss) : undefined,
    cpuSeconds: cpu.length > 0 ? median(cpu) : undefined,
    ...(syncs === undefined ? {} : { syncSeconds: median(syncs) }),
  };
}

/** The line of a failed run's stderr that says why: ferry's message or a Node error. */
function firstLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return (
    lines.find((l) => l.startsWith('ferry:')) ??
    lines.find((l) => /^\w*Error\b/.test(l)) ??
    lines[0] ??
    'failed'
  );
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseOpts>;
  try {
    parsed = parseOpts();
  } catch (error) {
    usage((error as Error).message);
  }
  const { values } = parsed;
  const size = parseSize(values.size ?? '2G');
  const runs = Number(values.runs ?? '3');
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) usage('--runs must be 1..100');
  const selected =
    values.cases === undefined
      ? DEFAULT_CASES
      : values.cases === 'all'
        ? CASES
        : values.cases.split(',').map((name) => {
            const c = CASES.find((x) => x.name === name.trim());
            if (c === undefined) usage(`unknown case "${name}"`);
            return c;
          });
  const log = (s: string) => process.stderr.write(`${s}\n`);

  const qemuVersion = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' });
  if (qemuVersion.status !== 0) usage('qemu-img is not installed (Debian package qemu-utils)');
  const timeFileWanted = hasGnuTime();
  if (!timeFileWanted) log(`bench: ${GNU_TIME} not found (Debian package time): RSS shows "?"`);
  const dropCaches = values['no-drop-caches'] !== true && canDropCaches();
  const qemuSync = values['no-qemu-sync'] !== true;

  const base = values.dir ?? tmpdir();
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, 'ferry-bench-'));
  const cleanup = () => {
    if (values.keep !== true) rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  try {
    const raw = join(dir, 'source.raw');
    const t0 = performance.now();
    const { dataBytes } = await makeSource(raw, size);
    const allocated = (await stat(raw)).blocks * 512;
    log(
      `bench: source ${raw}: ${(size / MiB).toFixed(0)} MiB virtual, ` +
        `${(dataBytes / MiB).toFixed(0)} MiB written (${(allocated / MiB).toFixed(0)} MiB allocated), ` +
        `made in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const sources: Record<'raw' | 'qcow2', string> = { raw, qcow2: join(dir, 'source.qcow2') };
    if (selected.some((c) => c.from === 'qcow2')) {
      const r = spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, sources.qcow2]);
      if (r.status !== 0) throw new Error(`qemu-img could not make the qcow2 source: ${r.stderr}`);
    }
    log(
      `bench: ${runs} timed run(s) per tool after one warm-up; ` +
        (dropCaches
          ? 'sync + page cache dropped before each timed run'
          : 'sync before each timed run (page cache not dropped)') +
        (qemuSync ? "; qemu-img's time includes `sync OUTPUT`" : ''),
    );

    const timeFile = timeFileWanted ? join(dir, 'time.txt') : undefined;
    const startups: number[] = [];
    for (let i = 0; i < 3; i++) {
      startups.push((await measure(process.execPath, ferryArgs('--version'), undefined)).seconds);
    }
    const ferryStartupSeconds = median(startups);
    const results: CaseResult[] = [];
    for (const c of selected) {
      const src = sources[c.from];
      const ferryOut = join(dir, `out-ferry.${c.to}`);
      const qemuOut = join(dir, `out-qemu.${c.to}`);
      const ferry = () =>
        measure(
          process.execPath,
          ferryArgs(
            'convert',
            src,
            ferryOut,
            '--from',
            c.from,
            '--to',
            c.to,
            ...c.ferryArgs,
            '--overwrite',
          ),
          timeFile,
        );
      const qemu = async () => {
        const r = await measure(
          'qemu-img',
          ['convert', '-f', c.from, '-O', c.qemuFormat, ...c.qemuArgs, src, qemuOut],
          timeFile,
        );
        if (!r.ok || !qemuSync) return { ...r, sync: 0 };
        const s = performance.now();
        spawnSync('sync', [qemuOut]);
        const sync = (performance.now() - s) / 1000;
        return { ...r, seconds: r.seconds + sync, sync };
      };

      log(`bench: ${c.name}: warm-up`);
      const warm = await ferry();
      if (!warm.ok) {
        const unsupported = /FERRY_FORMAT_UNSUPPORTED/.test(warm.stderr);
        const reason = firstLine(warm.stderr);
        log(`bench: ${c.name}: ferry ${unsupported ? 'n/a' : 'FAILED'}: ${reason}`);
        results.push({ name: c.name, status: unsupported ? 'n/a' : 'error', reason });
        await rm(ferryOut, { force: true });
        continue;
      }
      const qwarm = await qemu();
      if (!qwarm.ok) {
        const reason = `qemu-img: ${firstLine(qwarm.stderr)}`;
        log(`bench: ${c.name}: ${reason}`);
        results.push({ name: c.name, status: 'error', reason });
        continue;
      }

      const ferryRuns: RunResult[] = [];
      const qemuRuns: RunResult[] = [];
      const syncs: number[] = [];
      let failure: string | undefined;
      for (let i = 0; i < runs && failure === undefined; i++) {
        const order = i % 2 === 0 ? (['ferry', 'qemu'] as const) : (['qemu', 'ferry'] as const);
        const reported: Record<string, string> = {};
        for (const tool of order) {
          await rm(tool === 'ferry' ? ferryOut : qemuOut, { force: true });
          settle(dropCaches);
          const before = reportedKiB();
          if (tool === 'ferry') {
            const r = await ferry();
            if (!r.ok) failure = `ferry: ${firstLine(r.stderr)}`;
            ferryRuns.push(r);
          } else {
            const r = await qemu();
            if (!r.ok) failure = `qemu-img: ${firstLine(r.stderr)}`;
            qemuRuns.push(r);
            syncs.push(r.sync);
          }
          const after = reportedKiB();
          if (before !== undefined && after !== undefined) {
            reported[tool] = ` (host got ${((after - before) / 1024).toFixed(0)} MiB back)`;
          }
          if (failure !== undefined) break;
        }
        log(
          `bench: ${c.name}: run ${i + 1}: ferry ${ferryRuns.at(-1)?.seconds.toFixed(2)} s${reported.ferry ?? ''}, ` +
            `qemu-img ${qemuRuns.at(-1)?.seconds.toFixed(2)} s${reported.qemu ?? ''}`,
        );
      }
      if (failure !== undefined) {
        log(`bench: ${c.name}: ${failure}`);
        results.push({ name: c.name, status: 'error', reason: failure });
        continue;
      }

      const cmp = spawnSync(
        'qemu-img',
        ['compare', '-f', c.from, '-F', c.qemuFormat, src, ferryOut],
        { encoding: 'utf8' },
      );
      const identical = cmp.status === 0;
      if (!identical) log(`bench: ${c.name}: qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
      const f = summarize(ferryRuns);
      const q = summarize(qemuRuns, qemuSync ? syncs : undefined);
      results.push({
        name: c.name,
        status: 'ok',
        ferry: f,
        qemu: q,
        ratio: q.median / f.median,
        identical,
      });
      await rm(ferryOut, { force: true });
      await rm(qemuOut, { force: true });
    }

    const report = {
      virtualSize: size,
      dataBytes,
      allocatedBytes: allocated,
      runs,
      dropCaches,
      qemuSync,
      qemuImg: firstLine(qemuVersion.stdout),
      node: process.version,
      cpus: cpus().length,
      ferryStartupSeconds,
      cases: results,
    };
    if (values.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(table(report, results));
    if (values.keep === true) log(`bench: kept ${dir}`);
    if (results.some((r) => r.status === 'error' || r.identical === false)) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

function parseOpts() {
  return parseArgs({
    options: {
      size: { type: 'string' },
      runs: { type: 'string' },
      cases: { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean' },
      json: { type: 'boolean' },
      'no-drop-caches': { type: 'boolean' },
      'no-qemu-sync': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
}

const mbps = (bytes: number, seconds: number) => (bytes / seconds / 1e6).toFixed(0);
const mib = (kib: number | undefined) => (kib === undefined ? '?' : `${(kib / 1024).toFixed(0)}`);

function table(
  report: {
    virtualSize: number;
    dataBytes: number;
    runs: number;
    dropCaches: boolean;
    qemuSync: boolean;
    qemuImg: string;
    node: string;
    cpus: number;
    ferryStartupSeconds: number;
  },
  results: readonly CaseResult[],
): string {
  const head = [
    'case',
    'ferry s',
    'qemu s',
    'ferry MB/s virt',
    'ferry MB/s data',
    'qemu MB/s virt',
    'qemu MB/s data',
    'ratio',
    'ferry RSS MiB',
    'qemu RSS MiB',
    'identical',
  ];
  const rows = results.map((r) => {
    if (r.status !== 'ok' || r.ferry === undefined || r.qemu === undefined) {
      return [r.name, r.status, ...head.slice(2).map(() => '')];
    }
    const f = r.ferry.median;
    const q = r.qemu.median;
    return [
      r.name,
      f.toFixed(2),
      q.toFixed(2),
      mbps(report.virtualSize, f),
      mbps(report.dataBytes, f),
      mbps(report.virtualSize, q),
      mbps(report.dataBytes, q),
      (r.ratio ?? 0).toFixed(2),
      mib(r.ferry.rssKiB),
      mib(r.qemu.rssKiB),
      r.identical === true ? 'yes' : 'NO',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out = [
    `ferry convert vs ${report.qemuImg}; node ${report.node}, ${report.cpus} CPUs; ` +
      `ferry start-up (--version) ${report.ferryStartupSeconds.toFixed(2)} s, included in its times`,
    `source: ${(report.virtualSize / MiB).toFixed(0)} MiB virtual, ${(report.dataBytes / MiB).toFixed(0)} MiB ` +
      `written; median of ${report.runs} run(s); MB = 10^6 bytes; ratio = ferry speed / qemu-img speed; ` +
      `page cache ${report.dropCaches ? 'dropped' : 'kept'} before each run` +
      (report.qemuSync ? '; qemu-img time includes sync of its output' : ''),
    '',
    line(head),
    `|${widths.map((w, i) => (i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`,
    ...rows.map(line),
  ];
  const notes = results.filter((r) => r.status !== 'ok' && r.reason !== undefined);
  if (notes.length > 0) out.push('', ...notes.map((r) => `${r.name}: ${r.status}: ${r.reason}`));
  return `${out.join('\n')}\n`;
}

await main();
