export { type FerryConfig, loadConfig } from './ferry-config.js';
