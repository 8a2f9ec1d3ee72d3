/**
 * Test doubles and polling for VM Import: objects are files the test
 * registers by bucket and key (never a path built from the request), and
 * registerImage records its calls and hands out ami- ids.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import {
  DescribeImportImageTasksCommand,
  DescribeImportSnapshotTasksCommand,
  EC2Client,
  type ImportImageTask,
  type SnapshotTaskDetail,
} from '@aws-sdk/client-ec2';
import type {
  BootOptions,
  ImportDependencies,
  RegisterImageInput,
} from '../../src/cloud/import/index.js';
import { TEST_CREDENTIALS } from './cloud.js';

export interface Doubles {
  readonly deps: ImportDependencies;
  readonly objects: Map<string, string>;
  readonly registered: Array<{ account: string; region: string; input: RegisterImageInput }>;
}

export function doubles(
  extra: {
    boot?: BootOptions;
    checkpoint?: (id: string, point: string) => Promise<void>;
    objectFile?: ImportDependencies['objectFile'];
  } = {},
): Doubles {
  const objects = new Map<string, string>();
  const registered: Doubles['registered'] = [];
  const deps: ImportDependencies = {
    objectFile:
      extra.objectFile ??
      (async (_account, bucket, key) => {
        const path = objects.get(`${bucket}/${key}`);
        if (path === undefined) return undefined;
        return { path, size: (await stat(path)).size };
      }),
    registerImage: async (ctx, input) => {
      registered.push({ account: ctx.account, region: ctx.region, input });
      return { imageId: `ami-${randomBytes(9).toString('hex').slice(0, 17)}` };
    },
    boot: extra.boot ?? { enabled: false },
    ...(extra.checkpoint === undefined ? {} : { checkpoint: extra.checkpoint }),
  };
  return { deps, objects, registered };
}

export function ec2Client(url: string, region = 'us-east-1'): EC2Client {
  return new EC2Client({ endpoint: url, region, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
}

export interface Seen {
  readonly status: string;
  readonly message: string | undefined;
  readonly progress: number | undefined;
}

/** Polls an image task until it is completed or deleted; returns it and every distinct state seen. */
export async function waitImage(
  ec2: EC2Client,
  id: string,
  timeoutMs = 60_000,
): Promise<{ task: ImportImageTask; seen: Seen[] }> {
  const seen: Seen[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await ec2.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [id] }));
    const t = r.ImportImageTasks?.[0];
    if (t === undefined) throw new Error(`${id} is not listed`);
    note(seen, t.Status, t.StatusMessage, t.Progress);
    if (t.Status === 'completed' || t.Status === 'deleted') return { task: t, seen };
    if (Date.now() > end) throw new Error(`${id} still ${t.Status} ${t.StatusMessage}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function waitSnapshot(
  ec2: EC2Client,
  id: string,
  timeoutMs = 60_000,
): Promise<{ task: SnapshotTaskDetail; seen: Seen[] }> {
  const seen: Seen[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await ec2.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [id] }));
    const t = r.ImportSnapshotTasks?.[0]?.SnapshotTaskDetail;
    if (t === undefined) throw new Error(`${id} is not listed`);
    note(seen, t.Status, t.StatusMessage, t.Progress);
    if (t.Status === 'completed' || t.Status === 'deleted') return { task: t, seen };
    if (Date.now() > end) throw new Error(`${id} still ${t.Status} ${t.StatusMessage}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `check` holds for the image task. */
export async function waitUntil(
  ec2: EC2Client,
  id: string,
  check: (t: ImportImageTask) => boolean,
  timeoutMs = 60_000,
): Promise<ImportImageTask> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await ec2.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [id] }));
    const t = r.ImportImageTasks?.[0];
    if (t !== undefined && check(t)) return t;
    if (Date.now() > end)
      throw new Error(`${id}: condition not met (${t?.Status} ${t?.StatusMessage})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function note(
  seen: Seen[],
  status: string | undefined,
  message: string | undefined,
  progress: string | undefined,
): void {
  const s: Seen = {
    status: status ?? '',
    message,
    progress: progress === undefined ? undefined : Number(progress),
  };
  const last = seen[seen.length - 1];
  if (last?.status !== s.status || last.message !== s.message || last.progress !== s.progress)
    seen.push(s);
}

/** A gate a checkpoint can wait on: `reached` resolves when a task gets there, `open()` lets it on. */
export function gate(point: string): {
  checkpoint: (id: string, p: string) => Promise<void>;
  reached: Promise<string>;
  open: () => void;
} {
  let reach!: (id: string) => void;
  let release!: () => void;
  const reached = new Promise<string>((r) => {
    reach = r;
  });
  const released = new Promise<void>((r) => {
    release = r;
  });
  return {
    checkpoint: async (id, p) => {
      if (p !== point) return;
      reach(id);
      await released;
    },
    reached,
    open: () => release(),
  };
}
