export { EXT_LIMITS, EXT_ROOT_INODE, type ExtDirEntry, ExtDriver, openExt } from './ext.js';
export type { ExtInode } from './inode.js';
export { type ExtSuperblock, hasExtMagic, parseExtSuperblock } from './superblock.js';
