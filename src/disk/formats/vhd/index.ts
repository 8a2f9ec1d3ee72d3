export { VhdImage, vhdReader } from './vhd-reader.js';
export { createVhdWriter, vhdVirtualSize, vhdWriter } from './vhd-writer.js';
