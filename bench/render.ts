/**
 * bench/render: full render of a ~2 GiB root tree (the corpus's debootstrap
 * root plus generated files) as a minimal ext4 filesystem, against the peer
 * in the same run: mke2fs -d of the tree, then e2fsck -f and resize2fs -M
 * (the minimum), each output synced. Then a second revision with ~1 % of
 * the files changed, rendered with --base: its time and the 512 KiB chunks
 * that differ from the first image, against a full render's data chunks.
 *
 *   npm run bench:render [-- --runs 3 --extra-mib 1600 --dir DIR --json --no-drop-caches]
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  benchOptions,
  buildBenchTree,
  changeOnePercent,
  MiB,
  seconds,
  settle,
} from './bench-tree.js';
import { ferryArgs } from './ferry-cli.js';

const haveTime = spawnSync('sh', ['-c', 'test -x /usr/bin/time']).status === 0;

interface BuildJson {
  bytes: number;
  dataChunks: number;
  changedChunks: number;
  totalChunks: number;
  keptFiles: number;
}

/** Runs a command under GNU time when present; returns stdout and the peak RSS in KiB. */
function timed(cmd: string, args: string[]): { out: string; rssKiB: number | null } {
  if (!haveTime)
    return {
      out: execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB }),
      rssKiB: null,
    };
  const r = spawnSync('/usr/bin/time', ['-f', 'FERRY-RSS %M', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
  });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const m = /FERRY-RSS (\d+)/.exec(r.stderr);
  return { out: r.stdout, rssKiB: m === null ? null : Number(m[1]) };
}

/** `ferry build bench/tree --layout fs --out OUT [...extra]` as a user runs it; its JSON and peak RSS. */
function build(
  store: string,
  out: string,
  extra: string[] = [],
): { result: BuildJson; rssKiB: number | null } {
  const r = timed(
    process.execPath,
    ferryArgs(
      'build',
      'bench/tree',
      '--layout',
      'fs',
      '--out',
      out,
      '--store',
      store,
      '--output',
      'json',
      ...extra,
    ),
  );
  return { result: JSON.parse(r.out) as BuildJson, rssKiB: r.rssKiB };
}

async function main(): Promise<void> {
  const options = benchOptions();
  const drop = options.drop;
  const work = await mkdtemp(join(options.dir ?? tmpdir(), 'ferry-bench-render-'));
  try {
    const t = await buildBenchTree(join(work, 'tree'), options.extraMib);
    process.stderr.write(`bench: tree: ${t.files} files, ${(t.bytes / MiB).toFixed(0)} MiB\n`);
    const store = join(work, 'store');
    const add = () =>
      execFileSync(
        process.execPath,
        ferryArgs('image', 'add', 'bench/tree', t.tree, '--store', store, '--output', 'json'),
        {
          maxBuffer: 64 * MiB,
        },
      );
    add();

    // The peer: mke2fs -d (room to spare), e2fsck -f (resize2fs insists), resize2fs -M, sync.
    const peerImg = join(work, 'peer.ext4');
    const room = Math.ceil((t.bytes * 1.5) / MiB) + 256;
    const peerRun = () => {
      settle(drop);
      const mkfsS = seconds(() =>
        execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', t.tree, peerImg, `${room}M`]),
      );
      const fsckS = seconds(() => {
        // 0: clean, 1: e2fsck tidied something (pass 3A directory optimisation): both fine for resize2fs.
        const r = spawnSync('e2fsck', ['-fy', peerImg], { encoding: 'utf8' });
        if (r.status !== 0 && r.status !== 1)
          throw new Error(`e2fsck -fy failed (${r.status}): ${r.stdout}${r.stderr}`);
      });
      const resizeS = seconds(() =>
        execFileSync('resize2fs', ['-M', peerImg], { stdio: ['ignore', 'ignore', 'pipe'] }),
      );
      const syncS = seconds(() => execFileSync('sync', [peerImg]));
      const bytes = Number(execFileSync('stat', ['-c', '%s', peerImg], { encoding: 'utf8' }));
      execFileSync('rm', [peerImg]);
      return { seconds: mkfsS + fsckS + resizeS + syncS, mkfsS, fsckS, resizeS, syncS, bytes };
    };

    // ferry: the CLI, as a user runs it (its raw writer syncs as it goes).
    const one = join(work, 'one.ext4');
    let full!: BuildJson;
    let fullRss: number | null = null;
    const ferryRun = () => {
      settle(drop);
      return seconds(() => {
        ({ result: full, rssKiB: fullRss } = build(store, one, ['--overwrite']));
      });
    };
    // Runs alternate which tool goes first; the medians are reported, every time too.
    const peerRuns: ReturnType<typeof peerRun>[] = [];
    const ferryRuns: number[] = [];
    for (let i = 0; i < options.runs; i++) {
      if (i % 2 === 0) {
        peerRuns.push(peerRun());
        ferryRuns.push(ferryRun());
      } else {
        ferryRuns.push(ferryRun());
        peerRuns.push(peerRun());
      }
      process.stderr.write(
        `bench: run ${i + 1}: peer ${peerRuns[i]!.seconds.toFixed(2)} s, ferry ${ferryRuns[i]!.toFixed(2)} s\n`,
      );
    }
    const peer = [...peerRuns].sort((a, b) => a.seconds - b.seconds)[Math.floor(options.runs / 2)]!;
    const { mkfsS, fsckS, resizeS, syncS, bytes: peerBytes } = peer;
    const peerS = peer.seconds;
    const fullS = [...ferryRuns].sort((a, b) => a - b)[Math.floor(options.runs / 2)]!;
    const fsckOk = spawnSync('e2fsck', ['-fn', one], { stdio: 'ignore' }).status === 0;

    const changed = await changeOnePercent(t);
    add();
    const two = join(work, 'two.ext4');
    settle(drop);
    let inc!: BuildJson;
    const incS = seconds(() => {
      inc = build(store, two, ['--base', one]).result;
    });
    const incFsckOk = spawnSync('e2fsck', ['-fn', two], { stdio: 'ignore' }).status === 0;
    const twoFull = join(work, 'two-full.ext4');
    const full2 = build(store, twoFull).result;
    const share = inc.changedChunks / full2.dataChunks;
    const result = {
      files: t.files,
      treeBytes: t.bytes,
      peer: {
        seconds: peerS,
        mkfsSeconds: mkfsS,
        fsckSeconds: fsckS,
        resizeSeconds: resizeS,
        syncSeconds: syncS,
        bytes: peerBytes,
      },
      full: {
        seconds: fullS,
        bytes: full.bytes,
        dataChunks: full.dataChunks,
        peakRssKiB: fullRss,
        e2fsckClean: fsckOk,
        ratio: peerS / fullS,
      },
      incremental: {
        changedFiles: changed.count,
        changedBytes: changed.bytes,
        seconds: incS,
        changedChunks: inc.changedChunks,
        fullRenderDataChunks: full2.dataChunks,
        share,
        goal: 0.03,
        withinGoal: share <= 0.03,
        keptFiles: inc.keptFiles,
        e2fsckClean: incFsckOk,
      },
      dropCaches: drop,
      runs: { peer: peerRuns.map((r) => r.seconds), ferry: ferryRuns },
    };
    if (options.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const f = (x: number) => x.toFixed(2);
    process.stdout.write(
      `${[
        `tree: ${t.files} files, ${(t.bytes / MiB).toFixed(0)} MiB; page cache ${drop ? 'dropped' : 'kept'} before each timed step; median of ${options.runs} run(s), alternating (peer ${peerRuns.map((r) => f(r.seconds)).join(', ')}; ferry ${ferryRuns.map(f).join(', ')})`,
        '',
        '| step | seconds | figures |',
        '| --- | --: | --- |',
        `| peer: mke2fs -d + e2fsck -f + resize2fs -M + sync | ${f(peerS)} | mke2fs ${f(mkfsS)}, e2fsck ${f(fsckS)}, resize2fs ${f(resizeS)}, sync ${f(syncS)}; ${(peerBytes / MiB).toFixed(0)} MiB |`,
        `| ferry build --layout fs (rev 1) | ${f(fullS)} | ${(full.bytes / MiB).toFixed(0)} MiB, ${full.dataChunks} data chunks, peak RSS ${fullRss === null ? '?' : `${((fullRss as number) / 1024).toFixed(0)} MiB`}; e2fsck ${fsckOk ? 'clean' : 'NOT clean'}; ratio peer/ferry ${(peerS / fullS).toFixed(2)} |`,
        `| ferry build --base (rev 2, ${changed.count} files changed) | ${f(incS)} | ${inc.changedChunks} chunks differ of ${full2.dataChunks} in a full render (${(share * 100).toFixed(2)} %; goal <= 3 %: ${share <= 0.03 ? 'met' : 'missed'}); e2fsck ${incFsckOk ? 'clean' : 'NOT clean'} |`,
      ].join('\n')}\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
