export { NtfsDriver, openNtfs, parseNtfsBoot } from './ntfs.js';
