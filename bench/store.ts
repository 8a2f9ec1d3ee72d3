/**
 * bench/store: ingest of a ~2 GiB root tree (the corpus's debootstrap root
 * plus generated files) against the floor (sha512sum of every file, then cp -a
 * of the tree, measured in the same run); a second revision with ~1 % of the
 * files changed; replication of both revisions over loopback HTTP.
 *
 *   npm run bench:store [-- --extra-mib 1600 --dir DIR --json --no-drop-caches]
 *
 * Needs the corpus tree (scripts/make-debian-root.sh); without it the tree
 * is only the generated files.
 */

import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hashToken,
  ImageServer,
  LocalStore,
  localBackend,
  RemoteStore,
  replicate,
} from '../src/store/index.js';
import {
  benchOptions,
  buildBenchTree,
  changeOnePercent,
  MiB,
  seconds,
  settle,
  timedAsync,
} from './bench-tree.js';
import { ferryArgs } from './ferry-cli.js';

async function main(): Promise<void> {
  const options = benchOptions();
  const drop = options.drop;
  const work = await mkdtemp(join(options.dir ?? tmpdir(), 'ferry-bench-store-'));
  try {
    const built = await buildBenchTree(join(work, 'tree'), options.extraMib);
    const { tree, rootfs } = built;
    const files = String(built.files);
    const treeBytes = built.bytes;
    process.stderr.write(
      `bench: tree ${tree}: ${files} files, ${(treeBytes / MiB).toFixed(0)} MiB${rootfs ? ' (debootstrap root + generated)' : ''}\n`,
    );

    // The floor: hashing every byte once, then copying the tree once.
    settle(drop);
    const hashS = seconds(() =>
      execFileSync('sh', [
        '-c',
        `cd ${tree} && find . -type f -print0 | xargs -0 -P1 sha512sum > /dev/null`,
      ]),
    );
    settle(drop);
    const cpS = seconds(() => execFileSync('cp', ['-a', tree, join(work, 'copy')]));
    await rm(join(work, 'copy'), { recursive: true, force: true });

    // ferry: the CLI, as a user runs it.
    const storeDir = join(work, 'store');
    settle(drop);
    let ingest1: { revision: string; newObjects: number; newBytes: number; bytes: number } = {
      revision: '',
      newObjects: 0,
      newBytes: 0,
      bytes: 0,
    };
    const ingestS = seconds(() => {
      ingest1 = JSON.parse(
        execFileSync(
          process.execPath,
          ferryArgs('image', 'add', 'bench/tree', tree, '--store', storeDir, '--output', 'json'),
          {
            encoding: 'utf8',
            maxBuffer: 64 * MiB,
          },
        ),
      ) as typeof ingest1;
    });

    // ~1 % of the generated files change (rewritten with other bytes).
    const { count: changedCount, bytes: changedBytes } = await changeOnePercent(built);
    settle(drop);
    let ingest2 = { revision: '', newObjects: 0, newBytes: 0, bytes: 0 };
    const ingest2S = seconds(() => {
      ingest2 = JSON.parse(
        execFileSync(
          process.execPath,
          ferryArgs('image', 'add', 'bench/tree', tree, '--store', storeDir, '--output', 'json'),
          {
            encoding: 'utf8',
            maxBuffer: 64 * MiB,
          },
        ),
      ) as typeof ingest2;
    });

    // Replication over loopback: rev 1 into an empty store, then rev 2.
    const store = await LocalStore.open(storeDir);
    const target = await LocalStore.open(join(work, 'target'));
    const token = 'bench-token';
    const server = new ImageServer(target, {
      tokens: [{ name: 'bench', sha256: hashToken(token), scope: 'write' }],
    });
    const url = await server.listen();
    let full: Awaited<ReturnType<typeof replicate>>;
    let incr: Awaited<ReturnType<typeof replicate>>;
    let fullS: number;
    let incrS: number;
    try {
      const revs = await store.revisions('bench/tree');
      const src = localBackend(store);
      // First as if only revision 1 existed, then the whole stream (revision 2 on top).
      const onlyFirst = { ...src, revisions: async () => revs.slice(0, 1) };
      [full, fullS] = await timedAsync(() =>
        replicate(onlyFirst, new RemoteStore(url, { token }), { streams: ['bench/tree'] }),
      );
      [incr, incrS] = await timedAsync(() =>
        replicate(src, new RemoteStore(url, { token }), { streams: ['bench/tree'] }),
      );
    } finally {
      await server.close();
    }
    const manifest2 = (await readFile(store.objects.pathOf(ingest2.revision))).length;
    const floorS = hashS + cpS;
    const result = {
      files: Number(files),
      treeBytes,
      floor: { sha512sumSeconds: hashS, cpSeconds: cpS, seconds: floorS },
      ingest: { seconds: ingestS, ratio: floorS / ingestS, mbPerSecond: treeBytes / 1e6 / ingestS },
      second: {
        changedFiles: changedCount,
        changedBytes,
        seconds: ingest2S,
        newObjects: ingest2.newObjects,
        newBytes: ingest2.newBytes,
        manifestBytes: manifest2,
      },
      replication: {
        full: { ...full, seconds: fullS, mbPerSecond: full.bytes / 1e6 / fullS },
        incremental: {
          ...incr,
          seconds: incrS,
          goal: 1.1 * changedBytes + manifest2,
          withinGoal: incr.bytes <= 1.1 * changedBytes + manifest2,
        },
      },
      dropCaches: drop,
    };
    if (options.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const f = (x: number) => x.toFixed(2);
    process.stdout.write(
      `${[
        `tree: ${files} files, ${(treeBytes / MiB).toFixed(0)} MiB; page cache ${drop ? 'dropped' : 'kept'} before each timed step`,
        '',
        '| step | seconds | figures |',
        '| --- | --: | --- |',
        `| floor: sha512sum + cp -a | ${f(floorS)} | sha512sum ${f(hashS)} s, cp ${f(cpS)} s |`,
        `| ferry image add (rev 1) | ${f(ingestS)} | ${(treeBytes / 1e6 / ingestS).toFixed(0)} MB/s; ratio floor/ferry ${(floorS / ingestS).toFixed(2)} |`,
        `| ferry image add (rev 2, ${changedCount} files changed) | ${f(ingest2S)} | new: ${ingest2.newObjects} objects, ${(ingest2.newBytes / MiB).toFixed(2)} MiB (changed ${(changedBytes / MiB).toFixed(2)} MiB) |`,
        `| replicate rev 1 over loopback | ${f(fullS)} | ${full.objects} objects, ${(full.bytes / MiB).toFixed(0)} MiB, ${(full.bytes / 1e6 / fullS).toFixed(0)} MB/s |`,
        `| replicate rev 2 | ${f(incrS)} | ${incr.objects} objects, ${(incr.bytes / MiB).toFixed(2)} MiB sent; goal <= ${((1.1 * changedBytes + manifest2) / MiB).toFixed(2)} MiB: ${incr.bytes <= 1.1 * changedBytes + manifest2 ? 'met' : 'missed'} |`,
      ].join('\n')}\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
