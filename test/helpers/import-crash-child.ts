/**
 * Run as a child process by the VM Import crash test: opens an endpoint on
 * the data directory argv[2], starts an ImportImage of the raw disk argv[3]
 * through the SDK, and when the task's snapshot exists prints
 * "held TASK SNAPSHOT" and waits there until it is killed.
 */
import { stat } from 'node:fs/promises';
import { ImportImageCommand } from '@aws-sdk/client-ec2';
import { CloudEndpoint } from '../../src/cloud/index.js';
import { CTX } from './ebs.js';
import { ec2Client } from './vm-import.js';

const disk = process.argv[3]!;
const endpoint = await CloudEndpoint.open({
  dataDir: process.argv[2]!,
  port: 0,
  vmImport: {
    objectFile: async (_account, bucket, key) =>
      bucket === 'imports' && key === 'debian.raw'
        ? { path: disk, size: (await stat(disk)).size }
        : undefined,
    registerImage: async () => ({ imageId: 'ami-00000000000000000' }),
    boot: { enabled: false },
    checkpoint: async (id, point) => {
      if (point !== 'snapshot-started') return;
      const task = (await endpoint.vmImport!.tasks(CTX, 'image')).find((t) => t.id === id);
      process.stdout.write(`held ${id} ${task?.snapshotId}\n`);
      await new Promise(() => {});
    },
  },
});
const url = await endpoint.listen();
await ec2Client(url).send(
  new ImportImageCommand({ DiskContainers: [{ Format: 'RAW', Url: 's3://imports/debian.raw' }] }),
);
