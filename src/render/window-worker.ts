import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { nativeBinding } from '../disk/seek-data.js';
import { chunkDigests } from './chunk-digest.js';

/** One file run to copy into a window (block offsets relative to the window, in bytes). */
export interface WindowPiece {
  readonly path: string;
  readonly hash: string;
  /** Where the run's blocks start and end in the window (the blocks are zeroed first). */
  readonly at: number;
  readonly end: number;
  /** Bytes of the file to copy there, from `fileOffset`. */
  readonly length: number;
  readonly fileOffset: number;
  /** This piece holds the file's start: the worker hashes the whole file (reading past the window if it goes on). */
  readonly verify: boolean;
  readonly size: number;
}

export interface WindowTask {
  readonly id: number;
  readonly buf: ArrayBuffer;
  readonly pieces: readonly WindowPiece[];
}

export type WindowReply =
  | {
      readonly id: number;
      readonly buf: ArrayBuffer;
      /** SHA-256 of each 512 KiB chunk of the filled window, null where all zeros. */
      readonly digests: (string | null)[];
      readonly error?: undefined;
    }
  | {
      readonly id: number;
      readonly buf: ArrayBuffer;
      readonly error: { readonly code: string; readonly hash: string; readonly message: string };
    };

/**
 * Copies file runs into a window with synchronous reads: a render reads
 * thousands of small files, and one worker doing open/pread/close without a
 * promise per call beats the main thread's async calls several times over.
 * Files that lie wholly in the window are hashed here too, and so are
 * the window's 512 KiB chunks once filled.
 */
function run(task: WindowTask): WindowReply {
  const buf = Buffer.from(task.buf);
  const pieces = task.pieces;
  // Files opened ahead of the one being copied, each with a read-ahead
  // hint: on a cold cache the device then has many reads to work on
  // instead of one small file at a time.
  const fds = new Map<number, number>();
  let ahead = 0;
  const openAhead = (upto: number): number | null => {
    for (; ahead < Math.min(upto, pieces.length); ahead++) {
      const p = pieces[ahead]!;
      if (p.length === 0) continue;
      let fd: number;
      try {
        fd = openSync(p.path, 'r');
      } catch {
        return ahead;
      }
      fds.set(ahead, fd);
      const whole = p.verify && p.size > p.length;
      native?.willNeed?.(fd, whole ? 0 : p.fileOffset, whole ? p.size : p.length);
    }
    return null;
  };
  try {
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      buf.fill(0, p.at, p.end);
      if (p.length === 0) continue;
      const missing = openAhead(i + OPEN_AHEAD);
      const fd = fds.get(i);
      if (fd === undefined || missing === i) {
        return {
          id: task.id,
          buf: task.buf,
          error: { code: 'FERRY_STORE_NOT_FOUND', hash: p.hash, message: 'cannot open' },
        };
      }
      let done = 0;
      while (done < p.length) {
        const n = readSync(fd, buf, p.at + done, p.length - done, p.fileOffset + done);
        if (n === 0) break;
        done += n;
      }
      if (done !== p.length)
        return {
          id: task.id,
          buf: task.buf,
          error: { code: 'FERRY_STORE_OBJECT_CORRUPT', hash: p.hash, message: 'short' },
        };
      if (p.verify && !verified(p, buf, fd)) {
        return {
          id: task.id,
          buf: task.buf,
          error: { code: 'FERRY_STORE_OBJECT_CORRUPT', hash: p.hash, message: 'hash' },
        };
      }
      closeSync(fd);
      fds.delete(i);
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return { id: task.id, buf: task.buf, digests: chunkDigests(buf) };
}

/** Files a worker keeps open ahead of the one it copies (with read-ahead hints). */
const OPEN_AHEAD = 32;
const native = nativeBinding();

/** Reused for the part of a file past its first window. */
const scratch = Buffer.allocUnsafe(1024 * 1024);

/** The file's SHA-512 is its name: the bytes in the window, then the rest read from the object. */
function verified(p: WindowPiece, buf: Buffer, fd: number): boolean {
  const h = createHash('sha512').update(buf.subarray(p.at, p.at + p.length));
  let at = p.length;
  while (at < p.size) {
    const n = readSync(fd, scratch, 0, Math.min(scratch.length, p.size - at), at);
    if (n === 0) return false;
    h.update(scratch.subarray(0, n));
    at += n;
  }
  return h.digest('hex') === p.hash;
}

parentPort?.on('message', (task: WindowTask) => {
  const reply = run(task);
  parentPort?.postMessage(reply, [reply.buf]);
});
