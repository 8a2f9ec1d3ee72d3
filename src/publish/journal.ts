/**
 * A run's durable step journal: one JSON line per event, appended and
 * fdatasynced before the call resolves. Lines that arrive while a sync is in
 * flight are written together with the next one (group commit), so many
 * placements checkpointing at once cost one sync, not one each.
 *
 * The journal is the run's history too: `ferry history` reads these files.
 * A crash can tear the last line; readers stop at the first line that does
 * not parse, which loses at most the event that was being written (its step
 * then looks started, not done, and is resumed).
 */

import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { syncDir } from '../util/sync-dir.js';

/** What a run was asked to do, enough to resume it without the command line. */
export interface RunRequest {
  /** The stream, or the image's name with --image. */
  readonly stream: string;
  /** The revision id (resolved before the run starts), or null with --image. */
  readonly revision: string | null;
  /** The disk image file with --image. */
  readonly image: string | null;
  /** Target names, in ferry.yaml order. */
  readonly targets: readonly string[];
  /** What the run does (absent: publish). A removal is never resumed as a publish. */
  readonly kind?: 'publish' | 'deregister';
}

export type StepState = 'started' | 'done' | 'skipped' | 'failed';

export interface ErrorRecord {
  readonly code: string;
  readonly message: string;
}

export type JournalRecord =
  | {
      readonly t: number;
      readonly type: 'run';
      readonly state: 'started';
      readonly request: RunRequest;
      readonly version: string;
    }
  | {
      readonly t: number;
      readonly type: 'run';
      readonly state: 'resumed';
    }
  | {
      readonly t: number;
      readonly type: 'run';
      readonly state: 'done' | 'failed' | 'aborted';
      readonly error?: ErrorRecord;
    }
  | {
      readonly t: number;
      readonly type: 'step';
      /** A placement key (`target/region`), or null for steps of the whole run (render). */
      readonly placement: string | null;
      readonly step: string;
      readonly state: StepState;
      readonly detail?: Readonly<Record<string, unknown>>;
      readonly error?: ErrorRecord;
    }
  | {
      readonly t: number;
      readonly type: 'checkpoint';
      readonly placement: string;
      readonly step: string;
      readonly value: unknown;
    };

/** Distributes Omit over the union, so each record keeps its own fields. */
export type NewRecord = JournalRecord extends infer R
  ? R extends JournalRecord
    ? Omit<R, 't'>
    : never
  : never;

/** A journal is refused past this size (a run writes a few hundred KiB at most). */
export const MAX_JOURNAL_BYTES = 64 * 1024 * 1024;
const MAX_LINE = 1024 * 1024;
const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

export function isRunId(id: string): boolean {
  return RUN_ID.test(id);
}

/** A sortable run id: UTC time to the second, then 6 random hex digits. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export class Journal {
  readonly path: string;
  readonly runId: string;
  readonly #fh: FileHandle;
  readonly #now: () => number;
  #queue: Array<{ line: string; resolve: () => void; reject: (e: unknown) => void }> = [];
  #flushing = false;
  #failed: unknown;
  #closed = false;

  private constructor(path: string, runId: string, fh: FileHandle, now: () => number) {
    this.path = path;
    this.runId = runId;
    this.#fh = fh;
    this.#now = now;
  }

  /** Opens (creating) the journal of `runId` under `dir` for appending. */
  static async open(dir: string, runId: string, now: () => number = Date.now): Promise<Journal> {
    if (!isRunId(runId)) throw new FerryError('FERRY_INTERNAL', `Cannot open journal ${runId}`);
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${runId}.jsonl`);
    let created = false;
    try {
      await stat(path);
    } catch {
      created = true;
    }
    const fh = await open(path, 'a', 0o644);
    if (created) await syncDir(dir);
    return new Journal(path, runId, fh, now);
  }

  /** Appends one record; resolves once it is on disk. */
  append(record: NewRecord): Promise<void> {
    if (this.#closed)
      return Promise.reject(
        new FerryError('FERRY_INTERNAL', 'Cannot write to the journal: it is closed'),
      );
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const line = `${JSON.stringify({ t: this.#now(), ...record })}\n`;
    return new Promise((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        await this.#fh.write(batch.map((b) => b.line).join(''));
        await this.#fh.datasync();
        for (const b of batch) b.resolve();
      } catch (error) {
        this.#failed = new FerryError(
          'FERRY_IO',
          `Cannot write the journal ${this.path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
          { cause: error },
        );
        for (const b of [...batch, ...this.#queue]) b.reject(this.#failed);
        this.#queue = [];
      }
    }
    this.#flushing = false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing) await new Promise((r) => setImmediate(r));
    await this.#fh.close();
  }
}

/**
 * Reads a journal: every whole, well-formed record up to the first that is
 * not (a torn last line after a crash). Hostile input: sizes are capped and
 * each record's shape checked.
 */
export async function readJournal(path: string): Promise<JournalRecord[]> {
  const st = await stat(path);
  if (st.size > MAX_JOURNAL_BYTES)
    throw new FerryError(
      'FERRY_JOURNAL_INVALID',
      `Cannot read the journal ${path}: it is over ${MAX_JOURNAL_BYTES} bytes`,
    );
  const text = await readFile(path, 'utf8');
  const out: JournalRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.length > MAX_LINE) break;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      break;
    }
    if (!wellFormed(value)) break;
    out.push(value);
  }
  if (out.length > 0 && !(out[0]?.type === 'run' && out[0].state === 'started'))
    throw new FerryError(
      'FERRY_JOURNAL_INVALID',
      `Cannot read the journal ${path}: it does not begin with the run's start`,
    );
  return out;
}

function wellFormed(v: unknown): v is JournalRecord {
  if (v === null || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  if (typeof r.t !== 'number' || !Number.isFinite(r.t)) return false;
  const str = (x: unknown, max = 512) => typeof x === 'string' && x.length <= max;
  switch (r.type) {
    case 'run': {
      if (r.state === 'started') {
        const q = r.request as Record<string, unknown> | null;
        return (
          q !== null &&
          typeof q === 'object' &&
          str(q.stream) &&
          (q.revision === null || str(q.revision, 128)) &&
          (q.image === null || str(q.image, 4096)) &&
          Array.isArray(q.targets) &&
          q.targets.length <= 64 &&
          q.targets.every((t) => str(t, 64)) &&
          (q.kind === undefined || q.kind === 'publish' || q.kind === 'deregister') &&
          str(r.version, 64)
        );
      }
      return ['resumed', 'done', 'failed', 'aborted'].includes(r.state as string);
    }
    case 'step':
      return (
        (r.placement === null || str(r.placement, 256)) &&
        str(r.step, 64) &&
        ['started', 'done', 'skipped', 'failed'].includes(r.state as string) &&
        (r.detail === undefined || (typeof r.detail === 'object' && r.detail !== null))
      );
    case 'checkpoint':
      return str(r.placement, 256) && str(r.step, 64);
    default:
      return false;
  }
}

/** Every run's journal under `dir`, oldest first. */
export async function listRuns(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return names
    .filter((n) => n.endsWith('.jsonl') && isRunId(n.slice(0, -6)))
    .map((n) => n.slice(0, -6))
    .sort();
}
