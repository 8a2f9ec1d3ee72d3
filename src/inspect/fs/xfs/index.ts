export { openXfs, parseXfsSuper, XfsDriver } from './xfs.js';
