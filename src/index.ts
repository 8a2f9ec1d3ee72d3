export * as disk from './disk/index.js';
export * from './errors/index.js';
