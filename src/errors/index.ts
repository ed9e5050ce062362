export { errorCodes } from './codes.js';
export type { ErrorCode } from './codes.js';
export {
  PortraitError,
  InputError,
  DefinitionError,
  ConfigError,
  StoreError,
  NotFoundError,
  toPortraitError,
  showValue,
} from './portrait-error.js';
export type { ErrorContext, ErrorDetail } from './portrait-error.js';
