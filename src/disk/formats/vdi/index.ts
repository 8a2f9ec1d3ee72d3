export { VdiImage, vdiReader } from './vdi-reader.js';
