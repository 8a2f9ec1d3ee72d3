/**
 * Durable writes for S3's files: everything is written under a temporary
 * name in the storage's tmp/ directory, fsynced, renamed into place and its
 * directory fsynced, so after a kill -9 (or a power loss) a file is either
 * absent or whole, and tmp/ holds whatever was in flight (swept at open).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}

/** fsyncs a directory, so that the entries renamed into it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

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
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(tmpDir, `${randomId(8)}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await renameDurably(tmp, path);
  } catch (error) {
    await removeQuietly(tmp);
    throw error;
  }
}

export function writeJsonDurably(tmpDir: string, path: string, value: unknown): Promise<void> {
  return writeFileDurably(tmpDir, path, `${JSON.stringify(value)}\n`);
}
