/** EC2's image actions over the Images service. */
import type { Ec2Action } from '../ec2.js';
import { type XmlFields, xmlElements } from '../xml.js';
import { amiMalformed, amiNotFound, invalidValue, missing, userMalformed } from './errors.js';
import { matchesAll, readFilters } from './filters.js';
import { ACCOUNT_ID, isId } from './ids.js';
import type { BlockDeviceMappingInput, EbsInput, RegisterImageInput } from './image-input.js';
import { ARCHITECTURES, BOOT_MODES, type ImageRecord, VOLUME_TYPES } from './image-record.js';
import type { Images } from './images.js';
import { paginate } from './paging.js';
import { permissionItems, readPermissionEdit } from './permissions.js';
import { QueryReader } from './query-reader.js';
import { blockDeviceXml, imageXml, NO_OUTPUT } from './render.js';
import { cmp, readTagSpecifications } from './tags.js';

const FILTERS = [
  'name',
  'image-id',
  'state',
  'owner-id',
  'owner-alias',
  'architecture',
  'is-public',
  'image-type',
  'root-device-type',
  'root-device-name',
  'virtualization-type',
  'boot-mode',
  'description',
  'kernel-id',
  'ramdisk-id',
  'manifest-location',
  'hypervisor',
  'ena-support',
  'sriov-net-support',
  'tpm-support',
  'imds-support',
  'source-image-id',
  'source-image-region',
  'block-device-mapping.snapshot-id',
  'block-device-mapping.device-name',
  'block-device-mapping.volume-size',
  'block-device-mapping.volume-type',
  'block-device-mapping.encrypted',
  'block-device-mapping.delete-on-termination',
  'tag-key',
  'tag-value',
];

function opt(v: string | undefined): string[] {
  return v === undefined ? [] : [v];
}

function filterValues(r: ImageRecord, name: string): string[] | undefined {
  const ebs = r.blockDeviceMappings.filter(
    (m) => m.virtualName === undefined && m.noDevice !== true,
  );
  switch (name) {
    case 'name':
      return [r.name];
    case 'image-id':
      return [r.imageId];
    case 'state':
      return [r.state];
    case 'owner-id':
      return [r.ownerId];
    case 'architecture':
      return [r.architecture];
    case 'is-public':
      return [String(r.public)];
    case 'image-type':
      return [r.imageType];
    case 'root-device-type':
      return [r.rootDeviceType];
    case 'root-device-name':
      return [r.rootDeviceName];
    case 'virtualization-type':
      return [r.virtualizationType];
    case 'boot-mode':
      return opt(r.bootMode);
    case 'description':
      return opt(r.description);
    case 'kernel-id':
      return opt(r.kernelId);
    case 'ramdisk-id':
      return opt(r.ramdiskId);
    case 'manifest-location':
      return opt(r.imageLocation);
    case 'hypervisor':
      return ['xen'];
    case 'ena-support':
      return [String(r.enaSupport === true)];
    case 'sriov-net-support':
      return opt(r.sriovNetSupport);
    case 'tpm-support':
      return opt(r.tpmSupport);
    case 'imds-support':
      return opt(r.imdsSupport);
    case 'source-image-id':
      return opt(r.sourceImageId);
    case 'source-image-region':
      return opt(r.sourceImageRegion);
    case 'block-device-mapping.snapshot-id':
      return ebs.flatMap((m) => opt(m.snapshotId));
    case 'block-device-mapping.device-name':
      return r.blockDeviceMappings.map((m) => m.deviceName);
    case 'block-device-mapping.volume-size':
      return ebs.flatMap((m) => (m.volumeSize === undefined ? [] : [String(m.volumeSize)]));
    case 'block-device-mapping.volume-type':
      return ebs.map((m) => m.volumeType ?? 'gp2');
    case 'block-device-mapping.encrypted':
      return ebs.map((m) => String(m.encrypted === true));
    case 'block-device-mapping.delete-on-termination':
      return ebs.map((m) => String(m.deleteOnTermination !== false));
    default:
      return undefined;
  }
}

/** RegisterImage's query parameters as a RegisterImageInput. */
export function readRegisterInput(q: QueryReader): RegisterImageInput {
  const mappings: BlockDeviceMappingInput[] = q.structs('BlockDeviceMapping', 65).map((b) => {
    const hasEbs = [...b.params.keys()].some((k) => k.startsWith('Ebs.'));
    const e = b.sub('Ebs');
    const ebs: EbsInput = {
      ...some('snapshotId', e.string('SnapshotId', { max: 64 })),
      ...some('volumeSize', e.integer('VolumeSize', 1, 65536)),
      ...some('volumeType', e.enumValue('VolumeType', VOLUME_TYPES)),
      ...some('deleteOnTermination', e.boolean('DeleteOnTermination')),
      ...some('encrypted', e.boolean('Encrypted')),
      ...some('kmsKeyId', e.string('KmsKeyId', { max: 2048 })),
      ...some('iops', e.integer('Iops', 100, 256000)),
      ...some('throughput', e.integer('Throughput', 125, 2000)),
    };
    return {
      deviceName: b.string('DeviceName', { max: 64 }) ?? '',
      ...some('virtualName', b.string('VirtualName', { max: 32 })),
      ...(b.has('NoDevice') ? { noDevice: true } : {}),
      ...(hasEbs ? { ebs } : {}),
    };
  });
  q.list('BillingProduct', 10, 64); // Accepted and ignored: there is no billing here.
  const tags = readTagSpecifications(q, ['image']).get('image');
  return {
    name: q.required('Name', 512),
    ...some('description', q.string('Description', { max: 1024 })),
    ...some('architecture', q.enumValue('Architecture', ARCHITECTURES)),
    ...some(
      'virtualizationType',
      q.enumValue('VirtualizationType', ['hvm', 'paravirtual'] as const),
    ),
    ...some('rootDeviceName', q.string('RootDeviceName', { max: 64 })),
    ...(mappings.length === 0 ? {} : { blockDeviceMappings: mappings }),
    ...some('imageLocation', q.string('ImageLocation', { max: 2048 })),
    ...some('bootMode', q.enumValue('BootMode', BOOT_MODES)),
    ...some('enaSupport', q.boolean('EnaSupport')),
    ...some('sriovNetSupport', q.string('SriovNetSupport', { max: 32 })),
    ...some('imdsSupport', q.enumValue('ImdsSupport', ['v2.0'] as const)),
    ...some('tpmSupport', q.enumValue('TpmSupport', ['v2.0'] as const)),
    ...some('uefiData', q.string('UefiData', { max: 65536 })),
    ...some('kernelId', q.string('KernelId', { max: 64 })),
    ...some('ramdiskId', q.string('RamdiskId', { max: 64 })),
    ...(tags === undefined ? {} : { tags }),
  };
}

function some<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

const ATTRIBUTES = [
  'description',
  'kernel',
  'ramdisk',
  'launchPermission',
  'productCodes',
  'blockDeviceMapping',
  'sriovNetSupport',
  'bootMode',
  'tpmSupport',
  'uefiData',
  'lastLaunchedTime',
  'imdsSupport',
  'deregistrationProtection',
] as const;

function value(v: string | undefined): XmlFields {
  return v === undefined ? {} : { value: v };
}

export function imageActions(images: Images): Record<string, Ec2Action> {
  const register: Ec2Action = async (request, params) => {
    const input = readRegisterInput(new QueryReader(params));
    const image = await images.registerImage(request, input);
    return xmlElements({ imageId: image.imageId });
  };

  const describe: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const caller = request.account;
    const ids = q.list('ImageId', 1000, 64);
    for (const id of ids) if (!isId(id, 'ami')) throw amiMalformed(id);
    const owners = q.list('Owner', 100, 64);
    for (const o of owners)
      if (
        !['self', 'amazon', 'aws-marketplace', 'aws-backup-vault'].includes(o) &&
        !ACCOUNT_ID.test(o)
      )
        throw userMalformed(o);
    const users = q.list('ExecutableBy', 100, 64);
    for (const u of users)
      if (!['self', 'all'].includes(u) && !ACCOUNT_ID.test(u)) throw userMalformed(u);
    q.boolean('IncludeDeprecated');
    q.boolean('IncludeDisabled');
    const filters = readFilters(q, FILTERS);
    let list = await images.visible(request);
    if (ids.length > 0) {
      for (const id of ids) if (!list.some((r) => r.imageId === id)) throw amiNotFound(id);
      list = list.filter((r) => ids.includes(r.imageId));
    }
    if (owners.length > 0) {
      const wanted = owners.map((o) => (o === 'self' ? caller : o));
      list = list.filter((r) => wanted.includes(r.ownerId));
    }
    if (users.length > 0) {
      list = list.filter((r) =>
        users.some((u) => {
          if (u === 'all') return r.public;
          const account = u === 'self' ? caller : u;
          return r.ownerId === account || r.launchUsers.includes(account);
        }),
      );
    }
    list = list.filter((r) =>
      matchesAll(filters, (n) => filterValues(r, n), r.ownerId === caller ? r.tags : []),
    );
    list.sort((a, b) => cmp(a.imageId, b.imageId));
    const page = paginate(q, list, (r) => r.imageId, { min: 1, max: 1000, exclusive: ['ImageId'] });
    return xmlElements({
      imagesSet: page.items.map((r) => imageXml(r, caller)),
      nextToken: page.nextToken,
    });
  };

  const deregister: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('ImageId', 64);
    const results = await images.deregister(
      request,
      id,
      q.boolean('DeleteAssociatedSnapshots') ?? false,
    );
    return xmlElements({
      return: true,
      ...(results.length === 0
        ? {}
        : {
            deleteSnapshotResultSet: results.map((r) => ({
              snapshotId: r.snapshotId,
              returnCode: r.returnCode,
            })),
          }),
    });
  };

  const copy: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    if (q.has('DestinationOutpostArn'))
      throw invalidValue('Outposts are not supported by this endpoint.');
    q.integer('SnapshotCopyCompletionDurationMinutes', 15, 2880);
    const specs = readTagSpecifications(q, ['image', 'snapshot']);
    const input = {
      sourceRegion: q.required('SourceRegion', 64),
      sourceImageId: q.required('SourceImageId', 64),
      name: q.required('Name', 512),
      ...some('description', q.string('Description', { max: 1024 })),
      ...some('encrypted', q.boolean('Encrypted')),
      ...some('kmsKeyId', q.string('KmsKeyId', { max: 2048 })),
      ...some('clientToken', q.string('ClientToken', { max: 64 })),
      ...some('copyImageTags', q.boolean('CopyImageTags')),
      ...some('imageTags', specs.get('image')),
      ...some('snapshotTags', specs.get('snapshot')),
    };
    const image = await images.copy(request, request.principal, input);
    return xmlElements({ imageId: image.imageId });
  };

  const modify: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('ImageId', 64);
    let attribute = q.string('Attribute', { max: 64 });
    const keys = [...params.keys()];
    attribute ??= keys.some((k) => k.startsWith('LaunchPermission.') || k === 'OperationType')
      ? 'launchPermission'
      : q.has('Description.Value')
        ? 'description'
        : q.has('ImdsSupport.Value')
          ? 'imdsSupport'
          : undefined;
    switch (attribute) {
      case 'launchPermission': {
        const edit = readPermissionEdit(q, 'LaunchPermission');
        if (edit === undefined) throw missing('launchPermission');
        await images.modifyLaunchPermission(request, id, edit);
        break;
      }
      case 'description': {
        const v = q.string('Description.Value', { max: 1024 }) ?? q.string('Value', { max: 1024 });
        if (v === undefined) throw missing('description');
        await images.setDescription(request, id, v);
        break;
      }
      case 'imdsSupport': {
        const v = q.string('ImdsSupport.Value', { max: 32 }) ?? q.string('Value', { max: 32 });
        if (v === undefined) throw missing('imdsSupport');
        await images.setImdsSupport(request, id, v);
        break;
      }
      case undefined:
        throw missing('attribute');
      default:
        throw invalidValue(
          `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`,
        );
    }
    return NO_OUTPUT;
  };

  const describeAttribute: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('ImageId', 64);
    const attribute = q.string('Attribute', { max: 64, required: true })!;
    if (!(ATTRIBUTES as readonly string[]).includes(attribute))
      throw invalidValue(
        `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`,
      );
    const r =
      attribute === 'launchPermission'
        ? await images.owned(request, id)
        : await images.find(request, id);
    const fields: Record<string, XmlFields | XmlFields[] | Array<Record<string, string>>> = {
      description: value(r.description),
      kernel: value(r.kernelId),
      ramdisk: value(r.ramdiskId),
      launchPermission: permissionItems(r.launchUsers, r.public),
      productCodes: [],
      blockDeviceMapping: r.blockDeviceMappings.map(blockDeviceXml),
      sriovNetSupport: value(r.sriovNetSupport),
      bootMode: value(r.bootMode),
      tpmSupport: value(r.tpmSupport),
      uefiData: value(r.uefiData),
      lastLaunchedTime: {},
      imdsSupport: value(r.imdsSupport),
      deregistrationProtection: value('disabled'),
    };
    return xmlElements({ imageId: id, [attribute]: fields[attribute] });
  };

  const reset: Ec2Action = async (request, params) => {
    const q = new QueryReader(params);
    const id = q.required('ImageId', 64);
    const attribute = q.required('Attribute', 64);
    if (attribute !== 'launchPermission')
      throw invalidValue(
        `Value (${attribute}) for parameter attribute is invalid. Only launchPermission can be reset.`,
      );
    await images.resetLaunchPermission(request, id);
    return NO_OUTPUT;
  };

  return {
    RegisterImage: register,
    DescribeImages: describe,
    DeregisterImage: deregister,
    CopyImage: copy,
    ModifyImageAttribute: modify,
    DescribeImageAttribute: describeAttribute,
    ResetImageAttribute: reset,
  };
}
