export { RawImage, rawReader } from './raw-reader.js';
export { createRawPatch, rawWriter } from './raw-writer.js';
