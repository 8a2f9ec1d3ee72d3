export { FlatVmdkImage } from './flat-image.js';
export { SparseVmdkImage } from './sparse-image.js';
export { VmdkStreamWriter, type VmdkStreamWriterOptions } from './stream-writer.js';
export { probeVmdk, vmdkReader } from './vmdk-reader.js';
export { vmdkWriter } from './vmdk-writer.js';
