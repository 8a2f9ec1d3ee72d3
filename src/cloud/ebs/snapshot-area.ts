import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../store/local-store.js';
import { type JournalEntry, PutJournal } from './put-journal.js';
import { parseRecord, type SnapshotRecord } from './snapshot-record.js';

/** Whose snapshots: the account and region a request is for. */
export interface EbsContext {
  readonly account: string;
  readonly region: string;
}

/** The live state of a pending snapshot: its journal and what it put so far. */
export interface Pending {
  readonly journal: PutJournal;
  readonly own: Map<number, string>;
  progress: number;
  /** The last put or the start, whichever is later (ms): the timeout counts from it. */
  lastActivity: number;
  inflight: number;
  /** Set while CompleteSnapshot runs: no new puts. */
  closed: boolean;
  idle: Array<() => void>;
}

/** The snapshots of one account in one region. */
export interface Area {
  readonly ctx: EbsContext;
  readonly dir: string;
  readonly records: Map<string, SnapshotRecord>;
  readonly pending: Map<string, Pending>;
  readonly tokens: Map<string, string>;
}

/** Loads the records of one account and region, and replays its pending snapshots' journals. */
export async function loadArea(root: string, ctx: EbsContext): Promise<Area> {
  const dir = join(root, 'accounts', ctx.account, ctx.region);
  await mkdir(join(dir, 'snapshots'), { recursive: true });
  await mkdir(join(dir, 'journals'), { recursive: true });
  const area: Area = { ctx, dir, records: new Map(), pending: new Map(), tokens: new Map() };
  for (const name of await readdir(join(dir, 'snapshots'))) {
    if (!name.endsWith('.json')) continue;
    const r = parseRecord(await readFile(join(dir, 'snapshots', name), 'utf8'));
    if (r === null || `${r.id}.json` !== name) continue;
    area.records.set(r.id, r);
    if (r.clientToken !== null && r.deleted === null) area.tokens.set(r.clientToken, r.id);
  }
  // A journal outlives its snapshot's completion if a crash came between
  // the record's write and the journal's removal.
  for (const name of await readdir(join(dir, 'journals'))) {
    const r = area.records.get(name.replace(/\.log$/, ''));
    if (r === undefined || r.status !== 'pending' || r.deleted !== null) {
      await unlink(join(dir, 'journals', name)).catch(() => {});
    }
  }
  for (const r of area.records.values()) {
    if (r.status !== 'pending' || r.deleted !== null) continue;
    const path = join(dir, 'journals', `${r.id}.log`);
    const { journal, entries } = await PutJournal.open(path);
    area.pending.set(r.id, newPending(journal, entries, r.startTime));
  }
  return area;
}

export function mapPath(area: Area, id: string): string {
  return join(area.dir, 'snapshots', `${id}.map`);
}

/** Writes a snapshot's record atomically and makes it the current one. */
export async function saveRecord(area: Area, record: SnapshotRecord): Promise<void> {
  await writeFileAtomic(
    join(area.dir, 'snapshots', `${record.id}.json`),
    `${JSON.stringify(record, null, 2)}\n`,
  );
  area.records.set(record.id, record);
}

export function newPending(
  journal: PutJournal,
  entries: readonly JournalEntry[],
  start: number,
): Pending {
  const own = new Map<number, string>();
  let progress = -1;
  let at = start;
  for (const e of entries) {
    own.set(e.index, e.digest);
    if (e.progress >= 0) progress = e.progress;
    at = Math.max(at, e.time);
  }
  return { journal, own, progress, lastActivity: at, inflight: 0, closed: false, idle: [] };
}
