/**
 * Durable writes for S3's files: everything is written under a temporary
 * name in the storage's tmp/ directory, fsynced, renamed into place and its
 * directory fsynced, so after a kill -9 (or a power loss) a file is either
 * absent or whole, and tmp/ holds whatever was in flight (swept at open).
 */
import { randomBytes } from 'node:crypto';
import { rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../store/local-store.js';
import { syncDir } from '../../util/sync-dir.js';

export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}

export { syncDir };

export async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => {});
}

/** Renames a finished temporary file into place and makes the new entry durable. */
export async function renameDurably(tmp: string, path: string): Promise<void> {
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** Writes `data` to `path` atomically (through `tmpDir`). */
export async function writeFileDurably(
  tmpDir: string,
  path: string,
  data: string | Buffer,
): Promise<void> {
  await writeFileAtomic(path, data, join(tmpDir, `${randomId(8)}.tmp`));
  await syncDir(dirname(path));
}

export function writeJsonDurably(tmpDir: string, path: string, value: unknown): Promise<void> {
  return writeFileDurably(tmpDir, path, `${JSON.stringify(value)}\n`);
}
