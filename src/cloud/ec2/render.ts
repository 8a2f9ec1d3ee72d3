/** The XML of snapshots, images and tags in EC2's response shapes (API 2016-11-15). */
import type { SnapshotInfo } from '../ebs/index.js';
import type { XmlFields } from '../xml.js';
import type { ImageBlockDevice, ImageRecord } from './image-record.js';
import type { Tag } from './tags.js';

export function tagSet(tags: readonly Tag[]): XmlFields[] {
  return tags.map((t) => ({ key: t.key, value: t.value }));
}

/** A snapshot; its tags only for its owner (tags are not shared with other accounts). */
export function snapshotXml(s: SnapshotInfo, caller: string): XmlFields {
  return {
    snapshotId: s.snapshotId,
    volumeId: 'vol-ffffffff',
    status: s.status,
    ...(s.statusMessage === null ? {} : { statusMessage: s.statusMessage }),
    startTime: s.startTime.toISOString(),
    progress: `${s.progress}%`,
    ownerId: s.ownerId,
    volumeSize: s.volumeSize,
    description: s.description ?? '',
    encrypted: s.encrypted,
    ...(s.kmsKeyArn === null ? {} : { kmsKeyId: s.kmsKeyArn }),
    storageTier: 'standard',
    ...(s.ownerId === caller && s.tags.length > 0 ? { tagSet: tagSet(s.tags) } : {}),
  };
}

export function blockDeviceXml(m: ImageBlockDevice): XmlFields {
  return {
    deviceName: m.deviceName,
    ...(m.virtualName === undefined ? {} : { virtualName: m.virtualName }),
    ...(m.noDevice === true ? { noDevice: '' } : {}),
    ...(m.virtualName !== undefined || m.noDevice === true
      ? {}
      : {
          ebs: {
            ...(m.snapshotId === undefined ? {} : { snapshotId: m.snapshotId }),
            ...(m.volumeSize === undefined ? {} : { volumeSize: m.volumeSize }),
            deleteOnTermination: m.deleteOnTermination ?? true,
            volumeType: m.volumeType ?? 'gp2',
            ...(m.iops === undefined ? {} : { iops: m.iops }),
            ...(m.throughput === undefined ? {} : { throughput: m.throughput }),
            encrypted: m.encrypted ?? false,
            ...(m.kmsKeyId === undefined ? {} : { kmsKeyId: m.kmsKeyId }),
          },
        }),
  };
}

export function imageXml(r: ImageRecord, caller: string): XmlFields {
  return {
    imageId: r.imageId,
    ...(r.imageLocation === undefined
      ? { imageLocation: `${r.ownerId}/${r.name}` }
      : { imageLocation: r.imageLocation }),
    imageState: r.state,
    imageOwnerId: r.ownerId,
    creationDate: new Date(r.creationTime).toISOString(),
    isPublic: r.public,
    architecture: r.architecture,
    imageType: r.imageType,
    ...(r.kernelId === undefined ? {} : { kernelId: r.kernelId }),
    ...(r.ramdiskId === undefined ? {} : { ramdiskId: r.ramdiskId }),
    platformDetails: 'Linux/UNIX',
    usageOperation: 'RunInstances',
    ...(r.sriovNetSupport === undefined ? {} : { sriovNetSupport: r.sriovNetSupport }),
    ...(r.enaSupport === undefined ? {} : { enaSupport: r.enaSupport }),
    name: r.name,
    ...(r.description === undefined ? {} : { description: r.description }),
    rootDeviceType: r.rootDeviceType,
    rootDeviceName: r.rootDeviceName,
    blockDeviceMapping: r.blockDeviceMappings.map(blockDeviceXml),
    virtualizationType: r.virtualizationType,
    hypervisor: 'xen',
    ...(r.bootMode === undefined ? {} : { bootMode: r.bootMode }),
    ...(r.tpmSupport === undefined ? {} : { tpmSupport: r.tpmSupport }),
    ...(r.imdsSupport === undefined ? {} : { imdsSupport: r.imdsSupport }),
    ...(r.sourceImageId === undefined ? {} : { sourceImageId: r.sourceImageId }),
    ...(r.sourceImageRegion === undefined ? {} : { sourceImageRegion: r.sourceImageRegion }),
    ...(r.ownerId === caller && r.tags.length > 0 ? { tagSet: tagSet(r.tags) } : {}),
  };
}

/**
 * The body of an action whose output the models leave empty. AWS's sample
 * responses add <return>true</return>, which no SDK reads; the models are
 * what the conformance tests hold the endpoint to, so nothing is sent.
 */
export const NO_OUTPUT = '';
