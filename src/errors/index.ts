export { ERROR_CODES, type ErrorCode } from './codes.js';
export {
  type ErrorDetails,
  FerryError,
  type FerryErrorOptions,
  isFerryError,
} from './ferry-error.js';
