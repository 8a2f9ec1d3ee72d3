export { type FatRef, openVfat, parseFatBootSector, VfatDriver } from './vfat.js';
