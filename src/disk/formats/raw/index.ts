export { RawImage, rawReader } from './raw-reader.js';
export { rawWriter } from './raw-writer.js';
