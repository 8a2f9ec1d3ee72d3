/**
 * The README's main job: on the embedded local cloud, ingest the sample tree
 * kept in the repository (examples/demo-rootfs), render it, publish it to
 * two accounts x two regions (encrypted), then change a file and publish the
 * new revision incrementally. Everything goes through ferry.yaml and
 * publishFromConfig, as `ferry publish` does.
 */

import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_FILE } from '../cloud/index.js';
import { loadConfig } from '../config/index.js';
import { FerryError } from '../errors/index.js';
import { type PublishOutput, publishFromConfig } from './from-config.js';
import { statePaths } from './state-paths.js';
import type { PublishEvent } from './types.js';

/** The sample tree, found from this module (dist/src/publish or src/publish). */
export function sampleTree(): string {
  return fileURLToPath(new URL('../../../examples/demo-rootfs', import.meta.url));
}

/** The second account of the demo's local cloud. */
export const DEMO_ACCOUNT_B = {
  id: '111111111111',
  accessKeyId: 'AKIAFERRYDEMOB000001',
  secretAccessKey: 'ferry-demo-account-b-secret',
} as const;

export const DEMO_CONFIG = `# Written by ferry demo: the sample stream and two accounts of the local cloud.
store: ./store
state: ./state
streams:
  demo:
    source: ./tree
    layout: disk
    boot: none
targets:
  account-a:
    type: aws
    endpoint: local
    credentials: {accessKeyId: test, secretAccessKey: test}
    regions: [us-east-1, eu-west-1]
    encryption: default
    tags: {owner: demo}
  account-b:
    type: aws
    endpoint: local
    credentials: {accessKeyId: ${DEMO_ACCOUNT_B.accessKeyId}, secretAccessKey: ${DEMO_ACCOUNT_B.secretAccessKey}}
    regions: [us-east-1, eu-west-1]
    encryption: default
    tags: {owner: demo}
`;

export interface DemoResult {
  readonly dir: string;
  readonly config: string;
  readonly first: PublishOutput;
  readonly second: PublishOutput;
}

export async function runDemo(
  dir: string,
  options: { signal?: AbortSignal; onEvent?: (e: PublishEvent) => void; version: string },
): Promise<DemoResult> {
  await mkdir(dir, { recursive: true });
  const tree = join(dir, 'tree');
  await cp(sampleTree(), tree, { recursive: true, force: true });
  const configPath = join(dir, 'ferry.yaml');
  await writeFile(configPath, DEMO_CONFIG);
  const config = await loadConfig(dir);
  const state = statePaths(config.state);
  await mkdir(state.cloud, { recursive: true });
  await writeFile(
    join(state.cloud, CONFIG_FILE),
    `${JSON.stringify({ accounts: [DEMO_ACCOUNT_B] }, null, 2)}\n`,
  );
  const once = async (): Promise<PublishOutput> => {
    const [out] = await publishFromConfig(config, {
      ref: 'demo',
      version: options.version,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
    if (out?.result === null || out?.result === undefined)
      throw new FerryError('FERRY_INTERNAL', 'Cannot run the demo: the publish returned no result');
    return out;
  };
  const first = await once();
  // The next build: one file changes.
  const info = join(tree, 'var', 'lib', 'ferry-demo', 'build-info');
  const build = Number(/build: (\d+)/.exec(await readFile(info, 'utf8'))?.[1] ?? '1') + 1;
  await writeFile(info, `build: ${build}\nbuilt: ${new Date().toISOString()}\n`);
  const second = await once();
  return { dir, config: configPath, first, second };
}
