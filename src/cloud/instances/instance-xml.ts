/** Instances as EC2's XML shapes (Reservation, Instance, InstanceStateChange). */
import type { XmlFields } from '../xml.js';
import { type InstanceRecord, type InstanceStateName, STATE_CODES } from './instance-record.js';
import { INSTANCE_TYPES } from './instance-types.js';
import type { StateChange } from './instances.js';

const iso = (ms: number) => new Date(ms).toISOString();

function stateXml(name: InstanceStateName): XmlFields {
  return { code: STATE_CODES[name], name };
}

export function instanceXml(r: InstanceRecord): XmlFields {
  const vcpus = INSTANCE_TYPES.get(r.instanceType)?.vcpus ?? 1;
  return {
    instanceId: r.instanceId,
    imageId: r.imageId,
    instanceState: stateXml(r.state),
    privateDnsName: '',
    dnsName: '',
    reason: r.transitionReason,
    amiLaunchIndex: r.amiLaunchIndex,
    productCodes: [],
    instanceType: r.instanceType,
    launchTime: iso(r.launchTime),
    placement: { availabilityZone: r.availabilityZone, groupName: '', tenancy: 'default' },
    monitoring: { state: 'disabled' },
    stateReason:
      r.stateReason === null
        ? undefined
        : { code: r.stateReason.code, message: r.stateReason.message },
    architecture: r.architecture,
    rootDeviceType: 'ebs',
    rootDeviceName: r.rootDeviceName,
    blockDeviceMapping:
      r.state === 'terminated'
        ? []
        : [
            {
              deviceName: r.rootDeviceName,
              ebs: {
                volumeId: r.rootVolumeId,
                status: 'attached',
                attachTime: iso(r.launchTime),
                deleteOnTermination: true,
              },
            },
          ],
    virtualizationType: 'hvm',
    clientToken: r.clientToken ?? undefined,
    tagSet: r.tags.length === 0 ? undefined : r.tags.map((t) => ({ key: t.key, value: t.value })),
    hypervisor: 'xen',
    groupSet: [],
    ebsOptimized: false,
    enaSupport: true,
    cpuOptions: {
      coreCount: Math.max(1, Math.floor(vcpus / 2)),
      threadsPerCore: vcpus >= 2 ? 2 : 1,
    },
    bootMode: r.bootMode,
    platformDetails: 'Linux/UNIX',
    usageOperation: 'RunInstances',
    usageOperationUpdateTime: iso(r.launchTime),
  };
}

/** One reservation (RunInstances' whole answer, DescribeInstances' items). */
export function reservationXml(records: readonly InstanceRecord[]): XmlFields {
  const first = records[0]!;
  return {
    reservationId: first.reservationId,
    ownerId: first.ownerId,
    groupSet: [],
    instancesSet: records.map(instanceXml),
  };
}

/** Groups instances by reservation, in the order the instances come. */
export function reservations(records: readonly InstanceRecord[]): InstanceRecord[][] {
  const groups = new Map<string, InstanceRecord[]>();
  for (const r of records) {
    const g = groups.get(r.reservationId);
    if (g === undefined) groups.set(r.reservationId, [r]);
    else g.push(r);
  }
  return [...groups.values()];
}

export function stateChangeXml(c: StateChange): XmlFields {
  return {
    instanceId: c.instanceId,
    currentState: stateXml(c.current),
    previousState: stateXml(c.previous),
  };
}
