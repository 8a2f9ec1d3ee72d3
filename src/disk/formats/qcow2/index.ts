export { Qcow2Image } from './qcow2-image.js';
export { qcow2Reader } from './qcow2-reader.js';
export { qcow2Writer } from './qcow2-writer.js';
