import { stat } from 'node:fs/promises';
import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import {
  BackendReader,
  defaultStoreDir,
  diffManifests,
  exportDirectory,
  exportTarball,
  ingestDirectory,
  ingestImage,
  ingestTarball,
  LocalStore,
  localBackend,
  looksLikeTarball,
  replicate,
  type StoreReader,
} from '../../store/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';
import { isStoreUrl, s3Store, storeBackend } from '../store-location.js';

export const imageHelp = `Usage: ferry image <subcommand> [--store DIR] [--output json]

Subcommands:
  add STREAM DIR|TARBALL|IMAGE
                              ingest a directory tree, a tarball (tar, gz, xz, zst) or the
                              Linux root (and what its fstab mounts) of a disk image in any
                              format ferry reads, detected from the bytes
  ls [STREAM]                 streams, or a stream's revisions (oldest first)
  show STREAM[@REV]           a revision's entries
  diff REV_A REV_B            added, removed and changed paths and bytes (STREAM[@REV] each)
  export STREAM[@REV] --to DIR|FILE.tar
                              recreate the exact tree in DIR (new or empty; ownership and
                              device nodes when run as root), or write it as a pax tarball
  rm STREAM@REV               remove a revision from its stream (objects go at the next gc)

The store is --store DIR|URL, else "store:" in ferry.yaml (./ferry.yaml or
$FERRY_CONFIG), else $FERRY_STORE, else ~/.local/share/ferry/store.
A URL is an image server (token in $FERRY_TOKEN) or s3://BUCKET[/PREFIX]:
ls, show, diff and export read it directly; add ingests into the local store
and pushes the stream to it; rm and gc work on local and S3 stores.
A revision is a full SHA-512 id or a prefix of at least 8 hex digits.`;

export { storeLocation };

export const gcHelp = `Usage: ferry gc [--keep N] [--grace SECONDS] [--store DIR|s3://BUCKET[/PREFIX]]
                [--dry-run] [--output json]

Keeps the newest N revisions of every stream (default: all) and every pinned
revision, then removes the objects nothing kept refers to, sparing those
written in the last SECONDS (default 3600): a writer may be about to commit
them. Safe to interrupt: refs are rewritten before any object is removed.
On S3 it is safe beside writers too, and also removes uploads that were
never finished (incomplete multipart uploads) once older than the grace.`;

type Flags = Record<string, string | boolean | string[] | undefined>;

/** --store, else ferry.yaml's store, else $FERRY_STORE or the per-user directory. */
async function storeLocation(flags: Flags): Promise<string> {
  if (typeof flags.store === 'string') return flags.store;
  return (await loadConfig()).store ?? defaultStoreDir();
}

async function openStore(flags: Flags): Promise<LocalStore> {
  const dir = await storeLocation(flags);
  if (isStoreUrl(dir)) {
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      `Cannot change ${dir} in place: rm and gc work on local and S3 stores, not on an image server (replicate to it instead)`,
    );
  }
  return LocalStore.open(dir);
}

/** The store to read: a directory, or an image server / S3 store by URL. */
async function openReader(flags: Flags): Promise<StoreReader> {
  const where = await storeLocation(flags);
  if (!isStoreUrl(where)) return LocalStore.open(where);
  return new BackendReader(await storeBackend(where, process.env.FERRY_TOKEN));
}

function need(args: string[], n: number, usage: string): void {
  if (args.length !== n) throw new FerryError('FERRY_USAGE', `Cannot run image ${usage}`);
}

export async function imageCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const [sub, ...rest] = args;
  const where = await storeLocation(flags);
  const remote = isStoreUrl(where);
  // Adding to a store by URL: ingest into the local store (the cache), then push the stream there.
  const store =
    sub === 'add' || (sub === 'rm' && !where.startsWith('s3://'))
      ? remote && sub === 'add'
        ? await LocalStore.open(defaultStoreDir())
        : await openStore(flags)
      : await openReader(flags);
  const out = (json: unknown, human: string): number => {
    if (mode === 'json') printJson(json);
    else process.stdout.write(human.endsWith('\n') ? human : `${human}\n`);
    return 0;
  };
  switch (sub) {
    case 'add': {
      need(rest, 2, 'add: give STREAM and a DIR or TARBALL');
      const [stream, source] = rest as [string, string];
      const st = await stat(source).catch(() => null);
      if (st === null || !(st.isDirectory() || st.isFile())) {
        throw new FerryError(
          'FERRY_NOT_FOUND',
          `Cannot run image add: ${source} is not a directory or a tarball`,
        );
      }
      const local = store as LocalStore;
      // The stream's newest revision tells which files are most likely stored already.
      const newest = st.isDirectory()
        ? await local.revisions(stream).then(
            (r) => r.at(-1),
            () => undefined,
          )
        : undefined;
      const previous =
        newest === undefined
          ? undefined
          : await local.getManifest(newest.id, signal).catch(() => undefined);
      const stats = st.isDirectory()
        ? await ingestDirectory(local, source, {
            signal,
            ...(previous === undefined ? {} : { previous }),
          })
        : (await looksLikeTarball(source))
          ? await ingestTarball(local, source, { signal })
          : await ingestImage(local, source, { signal });
      const { record, unchanged } = await local.commit(stream, stats.revision, source, signal);
      if (remote) {
        await replicate(localBackend(local), await storeBackend(where, process.env.FERRY_TOKEN), {
          streams: [stream],
          signal,
        });
      }
      return out(
        { stream, ...stats, unchanged, created: record.created },
        `${stream}@${stats.revision.slice(0, 16)}${unchanged ? ' (unchanged)' : ''}\n` +
          `${stats.files} files, ${formatBytes(stats.bytes)}; new: ${stats.newObjects} objects, ${formatBytes(stats.newBytes)}` +
          (stats.skipped.length > 0 ? `\nskipped (sockets): ${stats.skipped.join(', ')}` : ''),
      );
    }
    case 'ls': {
      if (rest.length === 0) {
        const streams = await store.streams();
        const rows = [];
        for (const s of streams) {
          const revs = await store.revisions(s);
          rows.push({ stream: s, revisions: revs.length, latest: revs[revs.length - 1] ?? null });
        }
        return out(
          { streams: rows },
          rows
            .map(
              (r) =>
                `${r.stream}  ${r.revisions} revision(s)  latest ${r.latest?.id.slice(0, 16) ?? '-'}`,
            )
            .join('\n') || '(no streams)',
        );
      }
      need(rest, 1, 'ls: give at most one STREAM');
      const revs = await store.revisions(rest[0]!);
      return out(
        { stream: rest[0], revisions: revs },
        revs
          .map(
            (r) => `${r.id.slice(0, 16)}  ${r.created}  ${r.files} files  ${formatBytes(r.bytes)}`,
          )
          .join('\n'),
      );
    }
    case 'show': {
      need(rest, 1, 'show: give STREAM[@REV]');
      const { stream, record } = await store.resolve(rest[0]!);
      const m = await store.getManifest(record.id, signal);
      return out(
        { stream, revision: record, entries: m.entries },
        [
          `${stream}@${record.id}`,
          ...m.entries.map(
            (e) =>
              `${e.type.padEnd(7)} ${e.mode.toString(8).padStart(4, '0')} ${e.uid}:${e.gid} ${String(e.size).padStart(10)} /${e.path}${e.target === undefined ? '' : ` -> ${e.target}`}${e.link === undefined ? '' : ` => /${e.link}`}`,
          ),
        ].join('\n'),
      );
    }
    case 'diff': {
      need(rest, 2, 'diff: give two STREAM[@REV]');
      const a = await store.resolve(rest[0]!);
      const b = await store.resolve(rest[1]!);
      const d = diffManifests(
        await store.getManifest(a.record.id),
        await store.getManifest(b.record.id),
      );
      return out(
        { from: a.record.id, to: b.record.id, ...d },
        [
          ...d.added.map((p) => `+ /${p}`),
          ...d.removed.map((p) => `- /${p}`),
          ...d.changed.map((c) => `~ /${c.path} (${c.fields.join(', ')})`),
          `${d.added.length} added (${formatBytes(d.addedBytes)}), ${d.removed.length} removed (${formatBytes(d.removedBytes)}), ${d.changed.length} changed (${formatBytes(d.changedBytes)} of new contents)`,
        ].join('\n'),
      );
    }
    case 'export': {
      need(rest, 1, 'export: give STREAM[@REV] and --to DIR|FILE.tar');
      const to = flags.to;
      if (typeof to !== 'string') {
        throw new FerryError(
          'FERRY_USAGE',
          'Cannot run image export: give --to DIR or --to FILE.tar',
        );
      }
      const { stream, record } = await store.resolve(rest[0]!);
      const manifest = await store.getManifest(record.id, signal);
      if (to.endsWith('.tar')) {
        const r = await exportTarball(store, manifest, to, {
          overwrite: flags.overwrite === true,
          signal,
        });
        return out(
          { stream, revision: record.id, to, ...r, skipped: [] },
          `exported ${stream}@${record.id.slice(0, 16)} to ${to}: ${r.entries} entries, ${formatBytes(r.bytes)} (pax tarball, ${formatBytes(r.fileSize)})`,
        );
      }
      const r = await exportDirectory(store, manifest, to, { signal });
      return out(
        { stream, revision: record.id, to, ...r },
        `exported ${stream}@${record.id.slice(0, 16)} to ${to}: ${r.entries} entries, ${formatBytes(r.bytes)}` +
          (r.skipped.length > 0
            ? `\nnot recreated (needs root): ${r.skipped.slice(0, 10).join(', ')}`
            : ''),
      );
    }
    case 'rm': {
      need(rest, 1, 'rm: give STREAM@REV');
      if (!rest[0]!.includes('@'))
        throw new FerryError('FERRY_USAGE', 'Cannot run image rm: name the revision as STREAM@REV');
      const { stream, record } = await store.resolve(rest[0]!);
      if (where.startsWith('s3://')) await s3Store(where).removeRevision(stream, record.id, signal);
      else await (store as LocalStore).removeRevision(stream, record.id, signal);
      return out({ stream, removed: record.id }, `removed ${stream}@${record.id.slice(0, 16)}`);
    }
    default:
      throw new FerryError('FERRY_USAGE', `Cannot run image ${sub ?? ''}: see ferry image --help`);
  }
}

export async function gcCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length > 0) throw new FerryError('FERRY_USAGE', 'Cannot run gc: it takes no arguments');
  let keep: number | undefined;
  if (typeof flags.keep === 'string') {
    keep = Number(flags.keep);
    if (!Number.isSafeInteger(keep) || keep < 1)
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot run gc: --keep takes a whole number of at least 1',
      );
  }
  let graceSeconds: number | undefined;
  if (typeof flags.grace === 'string') {
    graceSeconds = Number(flags.grace);
    if (flags.grace.trim() === '' || !Number.isSafeInteger(graceSeconds) || graceSeconds < 0)
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot run gc: --grace takes a whole number of seconds (0 or more)',
      );
  }
  const options = {
    ...(keep === undefined ? {} : { keep }),
    ...(graceSeconds === undefined ? {} : { graceSeconds }),
    dryRun: flags['dry-run'] === true,
    signal,
  };
  const where = await storeLocation(flags);
  const r = where.startsWith('s3://')
    ? await s3Store(where).gc(options)
    : await (await openStore(flags)).gc(options);
  if (mode === 'json') printJson(r);
  else
    process.stdout.write(
      `${flags['dry-run'] === true ? 'would remove' : 'removed'} ${r.removedRevisions.length} revision(s), ${r.removedObjects} object(s), ${formatBytes(r.removedBytes)}; ${r.keptObjects} object(s) kept\n`,
    );
  return 0;
}
