/**
 * Instances that really boot: a small busybox disk (test/helpers/
 * instance-disk.ts) uploaded with EBS direct, launched through the SDK,
 * asserted from its serial console through GetConsoleOutput. Stop and start
 * keep the overlay's writes (the guest counts its boots on its disk), the
 * cache is shared by a second (UEFI) instance, the endpoint's restart boots
 * running instances again, a guest that powers off is stopped, terminate
 * removes the overlay, and no QEMU outlives its endpoint.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type EC2Client,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { EbsEngine } from '../../src/cloud/ebs/index.js';
import { CloudEndpoint } from '../../src/cloud/index.js';
import { instanceDiskMissing, makeInstanceDisk } from '../helpers/instance-disk.js';
import {
  diskBlocks,
  ec2Client,
  ImageDouble,
  uploadSnapshot,
  waitForState,
} from '../helpers/instances.js';
import { qemuCompare, qemuImg } from '../helpers/qemu.js';

const missing = instanceDiskMissing();
const CHILD = fileURLToPath(new URL('../helpers/instance-endpoint-child.js', import.meta.url));
const BIOS_AMI = 'ami-0000000000000b105';
const UEFI_AMI = 'ami-000000000000000ef';
const ACCOUNT_DIR = join('instances', '000000000000', 'us-east-1');

/** Pids of QEMU processes whose command line mentions `text`. */
async function qemuPids(text: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = await readFile(`/proc/${name}/cmdline`, 'latin1');
      if (cmd.includes('qemu-system-x86_64') && cmd.includes(text)) out.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

async function consoleText(ec2: EC2Client, id: string): Promise<string> {
  const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
  return out.Output === undefined ? '' : Buffer.from(out.Output, 'base64').toString('latin1');
}

/** Polls the console until `re` matches (rejects with the console's end). */
async function waitForConsole(
  ec2: EC2Client,
  id: string,
  re: RegExp,
  timeoutMs = 180_000,
): Promise<string> {
  const end = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < end) {
    text = await consoleText(ec2, id);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no ${re} on ${id}'s console in ${timeoutMs} ms:\n${text.slice(-2000)}`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('instances boot under QEMU', { skip: missing ?? false, timeout: 20 * 60 * 1000 }, () => {
  let scratch = '';
  let data = '';
  let disk = '';
  const images = new ImageDouble();
  const reads = { count: 0 };
  let snapshot = '';
  let first = '';

  /** Opens the endpoint on the shared data directory, runs `fn`, and closes it. */
  async function withEndpoint(fn: (ec2: EC2Client, url: string) => Promise<void>): Promise<void> {
    const held: { ebs?: EbsEngine } = {};
    const endpoint = await CloudEndpoint.open({
      dataDir: data,
      port: 0,
      instances: {
        imageForLaunch: images.imageForLaunch,
        stopTimeoutMs: 20_000,
        readBlock: (ctx, id, index) => {
          reads.count++;
          return held.ebs!.readBlock(ctx, id, index);
        },
      },
    });
    held.ebs = endpoint.ebs;
    const url = await endpoint.listen();
    try {
      await fn(ec2Client(url), url);
    } finally {
      await endpoint.close();
    }
    assert.deepEqual(await qemuPids(data), [], 'close() stopped every QEMU');
  }

  before(async () => {
    if (missing !== null) return;
    scratch = await mkdtemp(join(tmpdir(), 'ferry-instances-'));
    data = join(scratch, 'data');
    disk = join(scratch, 'disk.raw');
    await makeInstanceDisk(join(scratch, 'build'), disk);
  });

  after(async () => {
    if (scratch === '') return;
    // Never leave a guest behind, even when a test failed midway.
    for (const pid of await qemuPids(data)) process.kill(pid, 'SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  });

  it('boots the uploaded disk to its serial console and keeps its writes across stop and start', async () => {
    await withEndpoint(async (ec2, url) => {
      const { blocks, gib } = await diskBlocks(disk);
      snapshot = await uploadSnapshot(url, blocks, gib);
      images.add(BIOS_AMI, snapshot);
      images.add(UEFI_AMI, snapshot, { bootMode: 'uefi' });
      const r = await ec2.send(
        new RunInstancesCommand({
          ImageId: BIOS_AMI,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
        }),
      );
      first = r.Instances![0]!.InstanceId!;
      const up = await waitForState(ec2, first, 'running', 120_000);
      assert.equal(up.StateReason, undefined);
      assert.equal(up.BootMode, 'legacy-bios');
      assert.equal(reads.count, blocks.size, 'each block of the snapshot read once');
      const boot1 = await waitForConsole(ec2, first, /FERRY-INSTANCE-BOOT count=1/);
      assert.match(boot1, /Linux version 6\.1/, 'the kernel logged to the serial console');
      assert.equal((await qemuPids(first)).length, 1);
      // The overlay is the instance's own, over the cached raw file.
      const overlay = join(data, ACCOUNT_DIR, first, 'overlay.qcow2');
      // -U: QEMU holds the image's lock while the guest runs.
      const info = JSON.parse(
        await qemuImg('info', '-U', '--output=json', '-f', 'qcow2', overlay),
      ) as Record<string, unknown>;
      const raw = join(data, 'cache', `000000000000.us-east-1.${snapshot}.raw`);
      assert.equal(info['backing-filename'], raw);
      assert.equal(info['backing-filename-format'], 'raw');

      // A moment more for acpid under a loaded TCG guest: the power button is then heard.
      await new Promise((r) => setTimeout(r, 3000));
      await ec2.send(new StopInstancesCommand({ InstanceIds: [first] }));
      const stopped = await waitForState(ec2, first, 'stopped', 60_000);
      assert.equal(stopped.StateReason?.Code, 'Client.UserInitiatedShutdown');
      assert.match(
        await consoleText(ec2, first),
        /FERRY-INSTANCE-ACPI-POWERDOWN/,
        'the guest saw the power button',
      );
      assert.deepEqual(await qemuPids(first), []);

      await ec2.send(new StartInstancesCommand({ InstanceIds: [first] }));
      await waitForState(ec2, first, 'running', 60_000);
      await waitForConsole(ec2, first, /FERRY-INSTANCE-BOOT count=2/);
      // The guest's writes went to the overlay: the cached file is still the uploaded disk.
      assert.ok((await qemuCompare(disk, raw, 'raw', 'raw')).identical, 'the cache is untouched');
      // Left running: the endpoint closes with it up.
    });
  });

  it('boots running instances again after a restart; a guest that powers itself off is stopped', async () => {
    reads.count = 0;
    await withEndpoint(async (ec2) => {
      // The third boot of this disk powers itself off.
      await waitForConsole(ec2, first, /FERRY-INSTANCE-POWEROFF/);
      const off = await waitForState(ec2, first, 'stopped', 60_000);
      assert.equal(off.StateReason?.Code, 'Client.InstanceInitiatedShutdown');
      assert.equal(
        (await consoleText(ec2, first)).match(/FERRY-INSTANCE-BOOT count=\d/g)?.join(' '),
        'FERRY-INSTANCE-BOOT count=1 FERRY-INSTANCE-BOOT count=2 FERRY-INSTANCE-BOOT count=3',
        'the console keeps every boot',
      );
      assert.equal(reads.count, 0, 'the cache survived the restart');
    });
  });

  it('shares the cached snapshot with a second instance booted with OVMF, and terminate removes the overlays', async () => {
    reads.count = 0;
    await withEndpoint(async (ec2) => {
      const r = await ec2.send(
        new RunInstancesCommand({
          ImageId: UEFI_AMI,
          InstanceType: 't3.small',
          MinCount: 1,
          MaxCount: 1,
        }),
      );
      const second = r.Instances![0]!.InstanceId!;
      const up = await waitForState(ec2, second, 'running', 120_000);
      assert.equal(up.BootMode, 'uefi');
      // Its own overlay: its first boot, whatever the first instance wrote.
      await waitForConsole(ec2, second, /FERRY-INSTANCE-BOOT count=1/);
      assert.equal(reads.count, 0, 'no block was read again');
      assert.ok(
        await exists(join(data, ACCOUNT_DIR, second, 'OVMF_VARS.fd')),
        'its own UEFI variables',
      );
      assert.deepEqual(
        (await readdir(join(data, 'cache'))).filter((f) => f.endsWith('.raw')),
        [`000000000000.us-east-1.${snapshot}.raw`],
      );
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [second, first] }));
      for (const id of [second, first]) {
        await waitForState(ec2, id, 'terminated', 60_000);
        assert.equal(await exists(join(data, ACCOUNT_DIR, id, 'overlay.qcow2')), false);
        assert.deepEqual(await qemuPids(id), []);
      }
      // The console stays readable after termination, as on EC2.
      assert.match(await consoleText(ec2, second), /FERRY-INSTANCE-BOOT count=1/);
      const index = JSON.parse(await readFile(join(data, 'cache', 'index.json'), 'utf8')) as {
        entries: { users: string[] }[];
      };
      assert.deepEqual(index.entries[0]!.users, [], 'no instance holds the cache entry');
    });
  });

  it('a killed endpoint leaves no QEMU behind, and the next one boots the instance again', async () => {
    const child = spawn(process.execPath, [CHILD, data, BIOS_AMI, snapshot], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    let id = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (t: string) => {
          buf += t;
          const nl = buf.indexOf('\n');
          if (nl >= 0) resolve(buf.slice(0, nl));
        });
        child.on('exit', () => reject(new Error('the endpoint child exited')));
      });
      const ec2 = ec2Client(url);
      const r = await ec2.send(
        new RunInstancesCommand({
          ImageId: BIOS_AMI,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
        }),
      );
      id = r.Instances![0]!.InstanceId!;
      await waitForState(ec2, id, 'running', 120_000);
      await waitForConsole(ec2, id, /FERRY-INSTANCE-BOOT count=1/);
      assert.equal((await qemuPids(id)).length, 1);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    // QEMU had the parent-death signal: it goes with the endpoint.
    const end = Date.now() + 10_000;
    while ((await qemuPids(id)).length > 0 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await qemuPids(id), [], 'no orphan QEMU');
    await withEndpoint(async (ec2) => {
      await waitForState(ec2, id, 'running', 120_000);
      await waitForConsole(ec2, id, /FERRY-INSTANCE-BOOT count=2/);
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      await waitForState(ec2, id, 'terminated', 60_000);
    });
  });
});
