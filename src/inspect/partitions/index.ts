export { BOOT_CODE_BYTES, detectBootCode } from './boot-code.js';
export { GPT_MAX_ARRAY_BYTES, GPT_MAX_ENTRIES, GPT_MAX_ENTRY_SIZE } from './gpt.js';
export { MAX_EBRS, MAX_LOGICAL_PARTITIONS } from './mbr.js';
export { gptTypeName, isExtendedType, mbrTypeName } from './partition-types.js';
export {
  MAX_FINDINGS,
  type ReadPartitionTableOptions,
  readPartitionTable,
} from './read-partition-table.js';
export {
  type BootCode,
  PARTITION_FINDING_CODES,
  type Partition,
  type PartitionFinding,
  type PartitionFindingCode,
  type PartitionKind,
  type PartitionTable,
} from './types.js';
