/**
 * EC2 instances through the SDK v3 against a real endpoint, without booting
 * (qemu: null): the state walk, errors as EC2 words them, filters and
 * paging, idempotency, accounts apart, the node's image cache (reuse,
 * checksums, download attempts, LRU eviction under a cap) and a restart of
 * the endpoint. The QEMU boots are in instances-qemu.test.ts.
 */
import assert from 'node:assert/strict';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeInstancesCommand,
  DescribeTagsCommand,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { EbsEngine } from '../../src/cloud/ebs/index.js';
import type { InstancesOptions } from '../../src/cloud/instances/index.js';
import { withCloud } from '../helpers/cloud.js';
import { block } from '../helpers/ebs.js';
import {
  describeOne,
  ec2Client,
  ImageDouble,
  uploadSnapshot,
  waitForState,
} from '../helpers/instances.js';
import { withTempDir } from '../helpers/qemu.js';

const OTHER = '222222222222';
const OTHER_KEY = { accessKeyId: 'AKIAOTHERINST0001', secretAccessKey: 'instances-secret' };
const config = { accounts: [{ id: OTHER, ...OTHER_KEY }] };
const AMI = 'ami-0123456789abcdef0';

/** Rejects with an AWS error of this code (and HTTP status, and message when given). */
async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  status = 400,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(
    p,
    (e: { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, code, e.message);
      assert.equal(e.$metadata?.httpStatusCode, status);
      if (message !== undefined) assert.match(e.message ?? '', message);
      return true;
    },
  );
}

const run = (input: Partial<RunInstancesCommandInput> = {}) =>
  new RunInstancesCommand({
    ImageId: AMI,
    InstanceType: 't3.micro',
    MinCount: 1,
    MaxCount: 1,
    ...input,
  });

/** An endpoint without QEMU, an image double, and a counting block reader. */
async function withInstances(
  fn: (t: {
    url: string;
    dir: string;
    images: ImageDouble;
    reads: { count: number };
    snapshot: string;
  }) => Promise<void>,
  options: Partial<InstancesOptions> & {
    dir?: string;
    snapshot?: string;
    /** Damages the block a read returns when this says so (a bad disk or network). */
    damage?: () => boolean;
  } = {},
): Promise<void> {
  const images = new ImageDouble();
  const reads = { count: 0 };
  const held: { ebs?: EbsEngine } = {};
  const { dir, snapshot: given, damage, ...rest } = options;
  await withCloud(
    async ({ url, dir: dataDir, endpoint }) => {
      held.ebs = endpoint.ebs;
      const snapshot =
        given ??
        (await uploadSnapshot(
          url,
          new Map([
            [0, block(1)],
            [5, block(2)],
            [6, Buffer.alloc(512 * 1024)],
          ]),
        ));
      images.add(AMI, snapshot);
      await fn({ url, dir: dataDir, images, reads, snapshot });
    },
    {
      config,
      ...(dir === undefined ? {} : { dir }),
      extra: {
        instances: {
          qemu: null,
          downloadRetryDelayMs: 10,
          imageForLaunch: images.imageForLaunch,
          readBlock: async (ctx, id, index) => {
            reads.count++;
            const data = Buffer.from(await held.ebs!.readBlock(ctx, id, index));
            if (damage?.() === true) data[100] = data[100]! ^ 0xff;
            return data;
          },
          ...rest,
        },
      },
    },
  );
}

describe('EC2 instances through the endpoint (no QEMU)', () => {
  it('walks pending → running → stopping → stopped → running → terminated, saying QEMU is missing', async () => {
    await withInstances(async ({ url, dir }) => {
      const ec2 = ec2Client(url);
      const r = await ec2.send(
        run({
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'web' }] }],
          UserData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
        }),
      );
      assert.match(r.ReservationId!, /^r-[0-9a-f]{17}$/);
      assert.equal(r.OwnerId, '000000000000');
      const first = r.Instances![0]!;
      assert.match(first.InstanceId!, /^i-[0-9a-f]{17}$/);
      assert.equal(first.State?.Name, 'pending');
      assert.equal(first.State?.Code, 0);
      const id = first.InstanceId!;
      const up = await waitForState(ec2, id, 'running');
      assert.equal(up.State?.Code, 16);
      assert.equal(up.ImageId, AMI);
      assert.equal(up.InstanceType, 't3.micro');
      assert.equal(up.Architecture, 'x86_64');
      assert.equal(up.RootDeviceName, '/dev/xvda');
      assert.equal(up.BootMode, 'legacy-bios');
      assert.equal(up.Placement?.AvailabilityZone, 'us-east-1a');
      assert.deepEqual(up.Tags, [{ Key: 'Name', Value: 'web' }]);
      assert.deepEqual(up.CpuOptions, { CoreCount: 1, ThreadsPerCore: 2 });
      assert.equal(up.StateReason?.Code, 'Server.QemuNotInstalled');
      // The user data is kept on the record, as sent.
      const stateFile = join(dir, 'state', '000000000000', 'us-east-1', 'instances.json');
      const saved = JSON.parse(await readFile(stateFile, 'utf8')) as {
        instances: { instanceId: string; userData: string | null }[];
      };
      assert.equal(
        saved.instances.find((x) => x.instanceId === id)?.userData,
        Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
      );
      const console = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
      assert.equal(console.InstanceId, id);
      assert.ok(console.Timestamp instanceof Date);
      assert.match(
        Buffer.from(console.Output!, 'base64').toString(),
        new RegExp(`qemu-system-x86_64 is not installed on this host, so instance ${id}`),
      );

      const stop = await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
      assert.deepEqual(stop.StoppingInstances, [
        {
          InstanceId: id,
          CurrentState: { Code: 64, Name: 'stopping' },
          PreviousState: { Code: 16, Name: 'running' },
        },
      ]);
      const stopped = await waitForState(ec2, id, 'stopped');
      assert.equal(stopped.StateReason?.Code, 'Client.UserInitiatedShutdown');
      assert.match(
        stopped.StateTransitionReason!,
        /^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$/,
      );
      // Stopping a stopped instance changes nothing and is no error.
      const again = await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
      assert.equal(again.StoppingInstances![0]!.CurrentState?.Name, 'stopped');

      const start = await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
      assert.equal(start.StartingInstances![0]!.CurrentState?.Name, 'pending');
      assert.equal(start.StartingInstances![0]!.PreviousState?.Name, 'stopped');
      await waitForState(ec2, id, 'running');

      const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      assert.equal(term.TerminatingInstances![0]!.CurrentState?.Name, 'shutting-down');
      const gone = await waitForState(ec2, id, 'terminated');
      assert.equal(gone.State?.Code, 48);
      assert.deepEqual(gone.BlockDeviceMappings, []);
      // Terminated instances stay listed, and cannot be started or stopped.
      await rejectsWith(
        ec2.send(new StartInstancesCommand({ InstanceIds: [id] })),
        'IncorrectInstanceState',
        400,
        new RegExp(`The instance '${id}' is not in a state from which it can be started`),
      );
      await rejectsWith(
        ec2.send(new StopInstancesCommand({ InstanceIds: [id] })),
        'IncorrectInstanceState',
        400,
        /is not in a state from which it can be stopped/,
      );
      const t2 = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      assert.equal(t2.TerminatingInstances![0]!.PreviousState?.Name, 'terminated');
    });
  });

  it('takes CreateTags, DeleteTags and DescribeTags on instances, as on images and snapshots', async () => {
    await withInstances(async ({ url }) => {
      const ec2 = ec2Client(url);
      const other = ec2Client(url, OTHER_KEY);
      const r = await ec2.send(
        run({
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: '1' }] }],
        }),
      );
      const id = r.Instances![0]!.InstanceId!;
      await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'b', Value: '2' }] }));
      const one = await describeOne(ec2, id);
      assert.deepEqual(one.Tags?.map((t) => [t.Key, t.Value]).sort(), [
        ['a', '1'],
        ['b', '2'],
      ]);
      const listed = await ec2.send(
        new DescribeTagsCommand({ Filters: [{ Name: 'resource-type', Values: ['instance'] }] }),
      );
      assert.deepEqual(
        listed.Tags?.map((t) => [t.ResourceId, t.ResourceType, t.Key]),
        [
          [id, 'instance', 'a'],
          [id, 'instance', 'b'],
        ],
      );
      await ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'a' }] }));
      assert.deepEqual(
        (await describeOne(ec2, id)).Tags?.map((t) => t.Key),
        ['b'],
      );
      // Another account cannot tag it, and an unknown id is not found.
      await rejectsWith(
        other.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'x', Value: 'y' }] })),
        'InvalidInstanceID.NotFound',
      );
      await rejectsWith(
        ec2.send(
          new CreateTagsCommand({
            Resources: ['i-0000000000000dead'],
            Tags: [{ Key: 'x', Value: 'y' }],
          }),
        ),
        'InvalidInstanceID.NotFound',
      );
      assert.equal((await other.send(new DescribeTagsCommand({}))).Tags?.length ?? 0, 0);
    });
  });

  it('drops terminated instances from listings after the visibility window', async () => {
    await withInstances(
      async ({ url }) => {
        const ec2 = ec2Client(url);
        const id = (await ec2.send(run())).Instances![0]!.InstanceId!;
        await waitForState(ec2, id, 'running');
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
        await waitForState(ec2, id, 'terminated');
        await new Promise((r) => setTimeout(r, 1200));
        await rejectsWith(
          ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })),
          'InvalidInstanceID.NotFound',
        );
        const all = await ec2.send(new DescribeInstancesCommand({}));
        assert.deepEqual(all.Reservations, []);
      },
      { terminatedVisibleMs: 1000 },
    );
  });

  it('refuses bad requests with EC2 codes and words', async () => {
    await withInstances(
      async ({ url }) => {
        const ec2 = ec2Client(url);
        await rejectsWith(
          ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-nothex'] })),
          'InvalidInstanceID.Malformed',
          400,
          /Invalid id: "i-nothex"/,
        );
        await rejectsWith(
          ec2.send(new StopInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })),
          'InvalidInstanceID.NotFound',
          400,
          /The instance ID 'i-0123456789abcdef0' does not exist/,
        );
        await rejectsWith(
          ec2.send(
            new DescribeInstancesCommand({
              InstanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'],
            }),
          ),
          'InvalidInstanceID.NotFound',
          400,
          /The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist/,
        );
        await rejectsWith(
          ec2.send(run({ InstanceType: 'z9.huge' as 't3.micro' })),
          'InvalidParameterValue',
          400,
          /Invalid value 'z9.huge' for InstanceType/,
        );
        await rejectsWith(ec2.send(run({ ImageId: 'ami-12345' })), 'InvalidAMIID.Malformed');
        await rejectsWith(
          ec2.send(run({ ImageId: 'ami-00000000000000000' })),
          'InvalidAMIID.NotFound',
          400,
          /The image id '\[ami-00000000000000000\]' does not exist/,
        );
        await rejectsWith(
          ec2.send(run({ MinCount: 3, MaxCount: 2 })),
          'InvalidParameterValue',
          400,
          /MinCount/,
        );
        await rejectsWith(ec2.send(run({ MinCount: 0 })), 'InvalidParameterValue');
        await rejectsWith(ec2.send(run({ UserData: 'not base64!' })), 'InvalidUserData.Malformed');
        await rejectsWith(
          ec2.send(run({ UserData: Buffer.alloc(16385, 1).toString('base64') })),
          'InvalidParameterValue',
          400,
          /User data is limited to 16384 bytes/,
        );
        await rejectsWith(
          ec2.send(
            run({
              TagSpecifications: [
                { ResourceType: 'instance', Tags: [{ Key: 'aws:x', Value: '1' }] },
              ],
            }),
          ),
          'InvalidParameterValue',
        );
        await rejectsWith(
          ec2.send(
            run({
              TagSpecifications: [
                { ResourceType: 'bucket' as 'instance', Tags: [{ Key: 'a', Value: '1' }] },
              ],
            }),
          ),
          'InvalidParameterValue',
          400,
          /not a valid taggable resource type/,
        );
        await rejectsWith(
          ec2.send(run({ InstanceInitiatedShutdownBehavior: 'explode' as 'stop' })),
          'InvalidParameterValue',
        );
        await rejectsWith(
          ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'color', Values: ['red'] }] })),
          'InvalidParameterValue',
          400,
          /The filter 'color' is invalid/,
        );
        await rejectsWith(
          ec2.send(
            new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'], MaxResults: 5 }),
          ),
          'InvalidParameterCombination',
        );
        await rejectsWith(
          ec2.send(new DescribeInstancesCommand({ MaxResults: 4 })),
          'InvalidParameterValue',
        );
        await rejectsWith(
          ec2.send(new DescribeInstancesCommand({ NextToken: 'bogus' })),
          'InvalidParameterValue',
        );
        await rejectsWith(
          ec2.send(new GetConsoleOutputCommand({ InstanceId: 'i-0123456789abcdef0' })),
          'InvalidInstanceID.NotFound',
        );
        await rejectsWith(
          ec2.send(
            new StopInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'], DryRun: true }),
          ),
          'DryRunOperation',
          412,
        );
        // The per-account limit: two may run, a third is refused; MaxCount takes what is left.
        const two = await ec2.send(run({ MinCount: 1, MaxCount: 5 }));
        assert.equal(two.Instances!.length, 2);
        await rejectsWith(ec2.send(run()), 'InstanceLimitExceeded', 400, /instance limit of 2/);
        // A pending instance cannot be stopped yet; a running one cannot be started (it is no error).
        const id = two.Instances![0]!.InstanceId!;
        await waitForState(ec2, id, 'running');
        const s = await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
        assert.equal(s.StartingInstances![0]!.CurrentState?.Name, 'running');
      },
      { maxInstances: 2 },
    );
  });

  it('keeps ClientToken idempotent and refuses its reuse with other arguments', async () => {
    await withInstances(async ({ url }) => {
      const ec2 = ec2Client(url);
      const a = await ec2.send(run({ ClientToken: 'token-1', MaxCount: 2 }));
      const b = await ec2.send(run({ ClientToken: 'token-1', MaxCount: 2 }));
      assert.equal(a.ReservationId, b.ReservationId);
      assert.deepEqual(
        a.Instances!.map((i) => i.InstanceId),
        b.Instances!.map((i) => i.InstanceId),
      );
      assert.equal(a.Instances![0]!.ClientToken, 'token-1');
      await rejectsWith(
        ec2.send(run({ ClientToken: 'token-1', InstanceType: 't3.small' })),
        'IdempotentParameterMismatch',
      );
      const all = await ec2.send(new DescribeInstancesCommand({}));
      assert.equal(all.Reservations!.flatMap((r) => r.Instances!).length, 2);
    });
  });

  it('filters by id, state, image, type and tags, and pages with MaxResults and NextToken', async () => {
    await withInstances(async ({ url }) => {
      const ec2 = ec2Client(url);
      const tag = (v: string) => [
        { ResourceType: 'instance' as const, Tags: [{ Key: 'role', Value: v }] },
      ];
      const web = await ec2.send(run({ MinCount: 4, MaxCount: 4, TagSpecifications: tag('web') }));
      const db = await ec2.send(
        run({ MinCount: 3, MaxCount: 3, InstanceType: 't3.small', TagSpecifications: tag('db') }),
      );
      assert.deepEqual(
        web.Instances!.map((i) => i.AmiLaunchIndex),
        [0, 1, 2, 3],
      );
      const dbIds = db.Instances!.map((i) => i.InstanceId!).sort();
      for (const id of dbIds) await waitForState(ec2, id, 'running');
      const ids = async (filters: { Name: string; Values: string[] }[]) =>
        (await ec2.send(new DescribeInstancesCommand({ Filters: filters })))
          .Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId!))
          .sort();
      assert.deepEqual(await ids([{ Name: 'tag:role', Values: ['db'] }]), dbIds);
      assert.deepEqual(await ids([{ Name: 'instance-type', Values: ['t3.small'] }]), dbIds);
      assert.deepEqual(await ids([{ Name: 'tag:role', Values: ['d*'] }]), dbIds);
      assert.deepEqual(await ids([{ Name: 'tag-key', Values: ['role'] }]).then((x) => x.length), 7);
      assert.deepEqual(await ids([{ Name: 'image-id', Values: [AMI] }]).then((x) => x.length), 7);
      assert.deepEqual(await ids([{ Name: 'image-id', Values: ['ami-00000000000000000'] }]), []);
      assert.deepEqual(await ids([{ Name: 'instance-id', Values: [dbIds[0]!] }]), [dbIds[0]]);
      assert.deepEqual(await ids([{ Name: 'reservation-id', Values: [db.ReservationId!] }]), dbIds);
      assert.deepEqual(
        await ids([
          { Name: 'instance-state-name', Values: ['running'] },
          { Name: 'tag:role', Values: ['db'] },
        ]),
        dbIds,
      );
      await ec2.send(new StopInstancesCommand({ InstanceIds: [dbIds[0]!] }));
      await waitForState(ec2, dbIds[0]!, 'stopped');
      assert.deepEqual(await ids([{ Name: 'instance-state-name', Values: ['stopped'] }]), [
        dbIds[0],
      ]);
      assert.deepEqual(await ids([{ Name: 'instance-state-code', Values: ['80'] }]), [dbIds[0]]);
      // Paging: 5 then 2, every instance once, reservations grouped.
      const p1 = await ec2.send(new DescribeInstancesCommand({ MaxResults: 5 }));
      const got1 = p1.Reservations!.flatMap((r) => r.Instances!);
      assert.equal(got1.length, 5);
      assert.ok(p1.NextToken);
      const p2 = await ec2.send(
        new DescribeInstancesCommand({ MaxResults: 5, NextToken: p1.NextToken }),
      );
      const got2 = p2.Reservations!.flatMap((r) => r.Instances!);
      assert.equal(got2.length, 2);
      assert.equal(p2.NextToken, undefined);
      const seen = [...got1, ...got2].map((i) => i.InstanceId!);
      assert.equal(new Set(seen).size, 7);
      for (const res of [...p1.Reservations!, ...p2.Reservations!])
        for (const i of res.Instances!)
          assert.equal(
            res.ReservationId,
            web.Instances!.some((w) => w.InstanceId === i.InstanceId)
              ? web.ReservationId
              : db.ReservationId,
          );
    });
  });

  it("keeps accounts apart: another account's instances are invisible", async () => {
    await withInstances(async ({ url, images, snapshot }) => {
      const mine = ec2Client(url);
      const theirs = ec2Client(url, OTHER_KEY);
      const id = (await mine.send(run())).Instances![0]!.InstanceId!;
      const other = await theirs.send(new DescribeInstancesCommand({}));
      assert.deepEqual(other.Reservations, []);
      for (const send of [
        () => theirs.send(new DescribeInstancesCommand({ InstanceIds: [id] })),
        () => theirs.send(new StopInstancesCommand({ InstanceIds: [id] })),
        () => theirs.send(new TerminateInstancesCommand({ InstanceIds: [id] })),
        () => theirs.send(new GetConsoleOutputCommand({ InstanceId: id })),
      ])
        await rejectsWith(send(), 'InvalidInstanceID.NotFound');
      // The image is not theirs to launch until it is shared; then it boots from the owner's snapshot.
      await rejectsWith(theirs.send(run()), 'InvalidAMIID.NotFound');
      images.add(AMI, snapshot, { users: ['000000000000', OTHER] });
      const shared = (await theirs.send(run())).Instances![0]!;
      await waitForState(theirs, shared.InstanceId!, 'running');
      await rejectsWith(
        mine.send(new DescribeInstancesCommand({ InstanceIds: [shared.InstanceId!] })),
        'InvalidInstanceID.NotFound',
      );
      assert.equal((await describeOne(mine, id)).State?.Name, 'running');
    });
  });

  it('materializes the root snapshot once, checked and sparse, and shares it between instances', async () => {
    await withInstances(async ({ url, dir, reads, snapshot }) => {
      const ec2 = ec2Client(url);
      const a = (await ec2.send(run())).Instances![0]!.InstanceId!;
      await waitForState(ec2, a, 'running');
      assert.equal(reads.count, 3, 'every block of the snapshot read once');
      const b = (await ec2.send(run())).Instances![0]!.InstanceId!;
      await waitForState(ec2, b, 'running');
      assert.equal(reads.count, 3, 'the second instance used the cache');
      const files = (await readdir(join(dir, 'cache'))).sort();
      assert.deepEqual(files, [`000000000000.us-east-1.${snapshot}.raw`, 'index.json']);
      const raw = join(dir, 'cache', files[0]!);
      const st = await stat(raw);
      assert.equal(st.size, 1024 ** 3, 'the raw file is the volume');
      assert.ok(
        st.blocks * 512 <= 2 * 1024 * 1024 + 64 * 1024,
        `sparse: ${st.blocks * 512} bytes allocated`,
      );
      // The first 3 MiB: blocks 0 and 5 where the snapshot has them, zeros between.
      const fh = await open(raw, 'r');
      const data = Buffer.alloc(6 * 512 * 1024);
      await fh.read(data, 0, data.length, 0);
      await fh.close();
      assert.ok(data.subarray(0, 512 * 1024).equals(block(1)));
      assert.ok(data.subarray(5 * 512 * 1024, 6 * 512 * 1024).equals(block(2)));
      assert.ok(data.subarray(512 * 1024, 5 * 512 * 1024).every((x) => x === 0));
      const index = JSON.parse(await readFile(join(dir, 'cache', 'index.json'), 'utf8')) as {
        entries: { users: string[] }[];
      };
      assert.deepEqual(index.entries[0]!.users.sort(), [a, b].sort());
    });
  });

  it('refuses images it cannot launch: another architecture, a volume smaller than its snapshot, a missing snapshot', async () => {
    await withInstances(async ({ url, images, snapshot }) => {
      const ec2 = ec2Client(url);
      images.add('ami-00000000000000a01', snapshot, { architecture: 'arm64' });
      await rejectsWith(
        ec2.send(run({ ImageId: 'ami-00000000000000a01' })),
        'InvalidParameterValue',
        400,
        /The architecture 'x86_64' of the specified instance type does not match the architecture 'arm64' of the specified AMI/,
      );
      const big = await uploadSnapshot(url, new Map([[0, block(9)]]), 2);
      images.add('ami-00000000000000a02', big, { volumeSize: 1 });
      await rejectsWith(
        ec2.send(run({ ImageId: 'ami-00000000000000a02' })),
        'InvalidBlockDeviceMapping',
        400,
        /Volume of size 1GB is smaller than snapshot/,
      );
      images.add('ami-00000000000000a03', 'snap-0123456789abcdef0');
      await rejectsWith(
        ec2.send(run({ ImageId: 'ami-00000000000000a03' })),
        'InvalidSnapshot.NotFound',
        400,
        /The snapshot 'snap-0123456789abcdef0' does not exist/,
      );
      // A larger root volume than the snapshot is fine.
      images.add('ami-00000000000000a04', snapshot, { volumeSize: 3 });
      const id = (await ec2.send(run({ ImageId: 'ami-00000000000000a04' }))).Instances![0]!
        .InstanceId!;
      await waitForState(ec2, id, 'running');
    });
  });

  it('terminates the instance with a state reason when every download attempt fails, and retries a transient failure', async () => {
    let failures = 0;
    await withInstances(
      async ({ url, dir, reads }) => {
        const ec2 = ec2Client(url);
        // Every read is damaged: both attempts fail the checksum, the launch ends terminated.
        failures = Number.POSITIVE_INFINITY;
        const id = (await ec2.send(run())).Instances![0]!.InstanceId!;
        const dead = await waitForState(ec2, id, 'terminated');
        assert.equal(dead.StateReason?.Code, 'Server.InternalError');
        assert.match(
          dead.StateReason!.Message!,
          /failed after 2 attempts: block \d+ does not match its SHA-256 checksum/,
        );
        assert.deepEqual(
          (await readdir(join(dir, 'cache'))).filter((f) => f !== 'index.json'),
          [],
          'no partial file is left in the cache',
        );
        // One bad read, then good ones: the second attempt succeeds.
        failures = 1;
        reads.count = 0;
        const ok = (await ec2.send(run())).Instances![0]!.InstanceId!;
        await waitForState(ec2, ok, 'running');
        assert.ok(reads.count > 3, `${reads.count} reads: the first attempt was retried`);
      },
      {
        downloadAttempts: 2,
        damage: () => {
          if (failures <= 0) return false;
          failures--;
          return true;
        },
      },
    );
  });

  it('evicts unused cache entries, least recently used first, and fails a launch the cap cannot hold', async () => {
    await withInstances(
      async ({ url, dir, images }) => {
        const ec2 = ec2Client(url);
        const snaps: string[] = [];
        for (const seed of [11, 12, 13]) {
          const s = await uploadSnapshot(
            url,
            new Map([
              [0, block(seed)],
              [1, block(seed + 100)],
            ]),
          );
          snaps.push(s);
          images.add(`ami-0000000000000${seed}00`, s);
        }
        const cached = async () =>
          (await readdir(join(dir, 'cache')))
            .filter((f) => f.endsWith('.raw'))
            .map((f) => f.split('.')[2]);
        const launch = async (seed: number) => {
          const id = (await ec2.send(run({ ImageId: `ami-0000000000000${seed}00` }))).Instances![0]!
            .InstanceId!;
          return id;
        };
        // The cap holds two 1 MiB entries.
        const a = await launch(11);
        await waitForState(ec2, a, 'running');
        const b = await launch(12);
        await waitForState(ec2, b, 'running');
        assert.deepEqual((await cached()).sort(), [snaps[0], snaps[1]].sort());
        // Both in use: a third cannot fit, and its launch fails with a capacity reason.
        const c = await launch(13);
        const full = await waitForState(ec2, c, 'terminated');
        assert.equal(full.StateReason?.Code, 'Server.InsufficientInstanceCapacity');
        // Terminating a releases its entry; b is used again later, so a is the one evicted.
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [a] }));
        await waitForState(ec2, a, 'terminated');
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [b] }));
        await waitForState(ec2, b, 'terminated');
        const b2 = await launch(12);
        await waitForState(ec2, b2, 'running');
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [b2] }));
        await waitForState(ec2, b2, 'terminated');
        const c2 = await launch(13);
        await waitForState(ec2, c2, 'running');
        assert.deepEqual((await cached()).sort(), [snaps[1], snaps[2]].sort());
      },
      { cacheMaxBytes: 2 * 1024 * 1024 + 512 * 1024 },
    );
  });

  it('keeps instances across a restart of the endpoint: running ones come back, stopped ones stay stopped', async () => {
    await withTempDir(async (dir) => {
      let running = '';
      let stopped = '';
      let snapshot = '';
      await withInstances(
        async ({ url, snapshot: s }) => {
          snapshot = s;
          const ec2 = ec2Client(url);
          const r = await ec2.send(run({ MinCount: 2, MaxCount: 2 }));
          [running, stopped] = r.Instances!.map((i) => i.InstanceId!) as [string, string];
          await waitForState(ec2, running, 'running');
          await waitForState(ec2, stopped, 'running');
          await ec2.send(new StopInstancesCommand({ InstanceIds: [stopped] }));
          await waitForState(ec2, stopped, 'stopped');
        },
        { dir },
      );
      await withInstances(
        async ({ url, reads }) => {
          const ec2 = ec2Client(url);
          const back = await waitForState(ec2, running, 'running');
          assert.equal(back.StateReason?.Code, 'Server.QemuNotInstalled');
          assert.equal((await describeOne(ec2, stopped)).State?.Name, 'stopped');
          assert.equal(reads.count, 0, 'the cache survived the restart');
          const console = await ec2.send(new GetConsoleOutputCommand({ InstanceId: running }));
          const text = Buffer.from(console.Output!, 'base64').toString();
          assert.equal(
            text.match(/is not installed/g)?.length,
            2,
            'one notice per boot, kept on disk',
          );
        },
        { dir, snapshot },
      );
    });
  });
});
