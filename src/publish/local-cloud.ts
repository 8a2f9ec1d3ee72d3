/**
 * `endpoint: local`: the embedded local cloud, started in this process on a
 * free loopback port over the state directory's cloud data (so what one
 * publish made is there for the next, and `ferry cloud serve --data
 * STATE/cloud` shows it). The accounts come from that directory's
 * config.json, as for `ferry cloud serve`.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudEndpoint, CONFIG_FILE } from '../cloud/index.js';

export interface LocalCloud {
  readonly url: string;
  readonly dataDir: string;
  close(): Promise<void>;
}

export async function startLocalCloud(
  dataDir: string,
  options: { config?: unknown; signal?: AbortSignal } = {},
): Promise<LocalCloud> {
  await mkdir(dataDir, { recursive: true });
  if (options.config !== undefined)
    await writeFile(join(dataDir, CONFIG_FILE), `${JSON.stringify(options.config, null, 2)}\n`);
  // No QEMU boot checks or instances: publishing needs images, not guests.
  const endpoint = await CloudEndpoint.open({
    dataDir,
    port: 0,
    instances: { qemu: null },
    vmImport: { boot: { enabled: false } },
  });
  const url = await endpoint.listen();
  return { url, dataDir, close: () => endpoint.close() };
}
