export { VhdxImage, vhdxReader } from './vhdx-reader.js';
export { createVhdxWriter, vhdxWriter } from './vhdx-writer.js';
