/**
 * A publish project for end-to-end tests: the sample tree, a ferry.yaml with
 * the given targets, a local cloud data directory with a second account,
 * and SDK clients to look at what the publish made.
 */

import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CONFIG_FILE } from '../../src/cloud/index.js';
import { type FerryConfig, loadConfig } from '../../src/config/index.js';
import { DEMO_ACCOUNT_B, sampleTree } from '../../src/publish/demo.js';
import { type StatePaths, startLocalCloud, statePaths } from '../../src/publish/index.js';

export const ACCOUNT_A = { accessKeyId: 'test', secretAccessKey: 'test' } as const;
export const ACCOUNT_B = {
  accessKeyId: DEMO_ACCOUNT_B.accessKeyId,
  secretAccessKey: DEMO_ACCOUNT_B.secretAccessKey,
} as const;

export interface Project {
  readonly dir: string;
  readonly tree: string;
  readonly state: StatePaths;
  config(): Promise<FerryConfig>;
}

/** A target block for ferry.yaml. */
export function awsTarget(
  name: string,
  options: {
    endpoint: string;
    account: 'a' | 'b';
    regions: readonly string[];
    extra?: string;
  },
): string {
  const k = options.account === 'a' ? ACCOUNT_A : ACCOUNT_B;
  return `  ${name}:
    type: aws
    endpoint: ${options.endpoint}
    credentials: {accessKeyId: ${k.accessKeyId}, secretAccessKey: ${k.secretAccessKey}}
    regions: [${options.regions.join(', ')}]
${options.extra ?? ''}`;
}

/** The project's one stream, demo: the sample tree as a disk without a boot loader. */
export const DEMO_STREAM = `  demo:
    source: ./tree
    layout: disk
    boot: none
`;

export async function makeProject(
  dir: string,
  targets: string,
  streams: string = DEMO_STREAM,
): Promise<Project> {
  const tree = join(dir, 'tree');
  await cp(sampleTree(), tree, { recursive: true });
  await writeFile(
    join(dir, 'ferry.yaml'),
    `store: ./store
state: ./state
streams:
${streams}targets:
${targets}`,
  );
  const state = statePaths(join(dir, 'state'));
  await mkdir(state.cloud, { recursive: true });
  await writeFile(join(state.cloud, CONFIG_FILE), JSON.stringify({ accounts: [DEMO_ACCOUNT_B] }));
  return { dir, tree, state, config: () => loadConfig(dir) };
}

/** Opens the project's cloud data (no publish may be running) and gives EC2 clients per account. */
export async function withProjectCloud<T>(
  dataDir: string,
  fn: (ec2: (account: 'a' | 'b', region: string) => EC2Client, url: string) => Promise<T>,
): Promise<T> {
  const cloud = await startLocalCloud(dataDir);
  const url = cloud.url;
  const clients: EC2Client[] = [];
  try {
    return await fn((account, region) => {
      const c = new EC2Client({
        endpoint: url,
        region,
        credentials: account === 'a' ? ACCOUNT_A : ACCOUNT_B,
      });
      clients.push(c);
      return c;
    }, url);
  } finally {
    for (const c of clients) c.destroy();
    await cloud.close();
  }
}

export async function ownImages(ec2: EC2Client) {
  return (await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
}

export async function ownSnapshots(ec2: EC2Client) {
  return (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];
}
