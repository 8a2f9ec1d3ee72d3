import { open } from 'node:fs/promises';

/** fsyncs a directory, so that the entries renamed into it survive a crash or a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
