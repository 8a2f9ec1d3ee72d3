/** Names for MBR type ids and GPT type GUIDs that matter for VM images. */

const MBR_TYPES: ReadonlyMap<number, string> = new Map([
  [0x01, 'fat12'],
  [0x04, 'fat16-small'],
  [0x05, 'extended'],
  [0x06, 'fat16'],
  [0x07, 'ntfs'],
  [0x0b, 'fat32'],
  [0x0c, 'fat32-lba'],
  [0x0e, 'fat16-lba'],
  [0x0f, 'extended-lba'],
  [0x11, 'hidden-fat12'],
  [0x12, 'compaq-diagnostics'],
  [0x14, 'hidden-fat16-small'],
  [0x16, 'hidden-fat16'],
  [0x17, 'hidden-ntfs'],
  [0x1b, 'hidden-fat32'],
  [0x1c, 'hidden-fat32-lba'],
  [0x1e, 'hidden-fat16-lba'],
  [0x27, 'windows-recovery'],
  [0x42, 'windows-ldm'],
  [0x82, 'linux-swap'],
  [0x83, 'linux'],
  [0x85, 'linux-extended'],
  [0x8e, 'linux-lvm'],
  [0xa5, 'freebsd'],
  [0xa6, 'openbsd'],
  [0xa8, 'darwin-ufs'],
  [0xa9, 'netbsd'],
  [0xaf, 'hfs'],
  [0xbe, 'solaris-boot'],
  [0xbf, 'solaris'],
  [0xda, 'non-fs-data'],
  [0xee, 'gpt-protective'],
  [0xef, 'efi-system'],
  [0xfb, 'vmware-vmfs'],
  [0xfc, 'vmware-vmkcore'],
  [0xfd, 'linux-raid'],
]);

/** Extended partition ids Linux follows: DOS, Windows (LBA) and Linux extended. */
export function isExtendedType(id: number): boolean {
  return id === 0x05 || id === 0x0f || id === 0x85;
}

/** As util-linux prints it (partx, blkid PART_ENTRY_TYPE): '0x83', '0x5'. */
export function mbrTypeId(id: number): string {
  return `0x${id.toString(16)}`;
}

export function mbrTypeName(id: number): string {
  return MBR_TYPES.get(id) ?? 'unknown';
}

const GPT_TYPES: ReadonlyMap<string, string> = new Map([
  ['c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 'efi-system'],
  ['21686148-6449-6e6f-744e-656564454649', 'bios-boot'],
  ['024dee41-33e7-11d3-9d69-0008c781f39f', 'mbr-partition-scheme'],
  ['0fc63daf-8483-4772-8e79-3d69d8477de4', 'linux-filesystem'],
  ['0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', 'linux-swap'],
  ['e6d6d379-f507-44c2-a23c-238f2a3df928', 'linux-lvm'],
  ['a19d880f-05fc-4d3b-a006-743f0f84911e', 'linux-raid'],
  ['933ac7e1-2eb4-4f13-b844-0e14e2aef915', 'linux-home'],
  ['3b8f8425-20e0-4f3b-907f-1a25a76f98e8', 'linux-srv'],
  ['bc13c2ff-59e6-4262-a352-b275fd6f7172', 'linux-extended-boot'],
  ['8da63339-0007-60c0-c436-083ac8230908', 'linux-reserved'],
  ['ca7d7ccb-63ed-4c53-861c-1742536059cc', 'linux-luks'],
  ['7ffec5c9-2d00-49b7-8941-3ea10a5586b7', 'linux-dm-crypt'],
  ['44479540-f297-41b2-9af7-d131d5f0458a', 'linux-root-x86'],
  ['4f68bce3-e8cd-4db1-96e7-fbcaf984b709', 'linux-root-x86-64'],
  ['69dad710-2ce4-4e3c-b16c-21a1d49abed3', 'linux-root-arm'],
  ['b921b045-1df0-41c3-af44-4c6f280d3fae', 'linux-root-arm64'],
  ['ebd0a0a2-b9e5-4433-87c0-68b6b72699c7', 'microsoft-basic-data'],
  ['e3c9e316-0b5c-4db8-817d-f92df00215ae', 'microsoft-reserved'],
  ['de94bba4-06d1-4d40-a16a-bfd50179d6ac', 'windows-recovery'],
  ['5808c8aa-7e8f-42e0-85d2-e1e90434cfb3', 'windows-ldm-metadata'],
  ['af9b60a0-1431-4f62-bc68-3311714a69ad', 'windows-ldm-data'],
  ['e75caf8f-f680-4cee-afa3-b001e56efc2d', 'windows-storage-spaces'],
  ['48465300-0000-11aa-aa11-00306543ecac', 'apple-hfs'],
  ['7c3457ef-0000-11aa-aa11-00306543ecac', 'apple-apfs'],
  ['83bd6b9d-7f41-11dc-be0b-001560b84f0f', 'freebsd-boot'],
  ['516e7cb4-6ecf-11d6-8ff8-00022d09712b', 'freebsd-data'],
  ['516e7cb5-6ecf-11d6-8ff8-00022d09712b', 'freebsd-swap'],
  ['516e7cb6-6ecf-11d6-8ff8-00022d09712b', 'freebsd-ufs'],
  ['516e7cba-6ecf-11d6-8ff8-00022d09712b', 'freebsd-zfs'],
  ['6a898cc3-1dd2-11b2-99a6-080020736631', 'solaris-zfs'],
  ['9e1a2d38-c612-4316-aa26-8b49521e5a8b', 'prep-boot'],
]);

export function gptTypeName(guid: string): string {
  return GPT_TYPES.get(guid) ?? 'unknown';
}
