import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where `ferry cloud serve` keeps its data unless given --data:
 * $FERRY_CLOUD_DATA, else $XDG_DATA_HOME/ferry/cloud, else
 * ~/.local/share/ferry/cloud. It holds config.json (accounts, yours) and
 * state/ (what the services hold, which `ferry cloud reset` wipes).
 */
export function defaultCloudDir(): string {
  if (process.env.FERRY_CLOUD_DATA) return process.env.FERRY_CLOUD_DATA;
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'ferry', 'cloud');
}

export function stateDir(dataDir: string): string {
  return join(dataDir, 'state');
}

/**
 * Wipes every account's state, with the node-side files of instances
 * (DATA/instances: overlays, consoles) and the image cache (DATA/cache);
 * the accounts config stays.
 */
export async function resetCloud(dataDir: string): Promise<void> {
  for (const dir of [stateDir(dataDir), join(dataDir, 'instances'), join(dataDir, 'cache')])
    await rm(dir, { recursive: true, force: true });
}
