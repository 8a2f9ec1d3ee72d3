import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { FerryError } from '../errors/index.js';

export interface LockOptions {
  /** How long to wait for another writer (default 30 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** True when `pid` is a live process on this machine. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is the lock at `path` held by a live process on this host? */
export async function lockHeld(path: string): Promise<boolean> {
  const holder = await readFile(path, 'utf8').catch(() => '');
  const [pidText, host] = holder.trim().split(' ');
  const pid = Number(pidText);
  return host === hostname() && Number.isSafeInteger(pid) && pid > 0 && alive(pid);
}

/**
 * Runs `fn` holding the lock file at `path` (created O_EXCL with our pid and
 * host). Waits with capped, jittered backoff while another writer holds it; a
 * lock left by a dead process on this host is taken over. Everything that
 * changes refs (commits, removals, GC's ref rewrite and sweep) runs under it.
 */
export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const me = `${process.pid} ${hostname()}\n`;
  let delay = 5;
  for (;;) {
    if (options.signal?.aborted)
      throw new FerryError(
        'FERRY_ABORTED',
        'Cannot take the store lock: the operation was aborted',
      );
    // Written whole under a private name, then hard-linked into place: the lock
    // never exists without its holder's pid in it, even if we are killed here.
    const mine = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(mine, me, { flag: 'wx' });
    try {
      await link(mine, path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(mine).catch(() => {});
    }
    const holder = await readFile(path, 'utf8').catch(() => '');
    const [pidText, host] = holder.trim().split(' ');
    const pid = Number(pidText);
    if (host === hostname() && Number.isSafeInteger(pid) && pid > 0 && !alive(pid)) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) {
      throw new FerryError(
        'FERRY_STORE_LOCKED',
        `Cannot take the store lock ${path}: held by ${holder.trim() || 'an unknown writer'}`,
        {
          details: { path, holder: holder.trim() },
          hint: 'If that process is gone (another host, a crashed container), remove the lock file',
        },
      );
    }
    await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
    delay = Math.min(delay * 2, 250);
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => {});
  }
}
