export { OvaImage, ovaReader } from './ova-reader.js';
export { ovaWriter } from './ova-writer.js';
