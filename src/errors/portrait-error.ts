import { errorCodes, type ErrorCode } from './codes.js';

/** Context a caller can branch on or show: which thing, which field, which value. */
export interface ErrorContext {
  /** JSON-pointer-like path of the offending field, e.g. `/window/size` or `/events/3/user_id`. */
  path?: string;
  /** Id of the definition, setting or entity concerned. */
  subject?: string;
  /** Entity key concerned, when there is one. */
  key?: string;
  /** Further detail, e.g. every problem of a definition. */
  details?: ReadonlyArray<ErrorDetail>;
}

/** One problem among several, e.g. one failed schema rule of a definition. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * The base of every error Portrait throws on purpose. `code` is stable and
 * documented in `docs/errors.md`; `message` names the thing, the field path and
 * the reason.
 */
export class PortraitError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly statusCode: number;
  readonly path: string | undefined;
  readonly subject: string | undefined;
  readonly key: string | undefined;
  readonly details: ReadonlyArray<ErrorDetail> | undefined;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PortraitError';
    const spec = errorCodes[code];
    this.code = code;
    this.retryable = spec.retryable;
    this.statusCode = spec.status;
    this.path = context.path;
    this.subject = context.subject;
    this.key = context.key;
    this.details = context.details;
  }

  /** The body the HTTP API returns for this error. */
  toJSON(): Record<string, unknown> {
    const body: Record<string, unknown> = {
      statusCode: this.statusCode,
      code: this.code,
      error: httpReason(this.statusCode),
      message: this.message,
    };
    if (this.path !== undefined) body.path = this.path;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

/** Raised when input (an event, a request) is malformed. */
export class InputError extends PortraitError {}
/** Raised when a definition document or expression is invalid. */
export class DefinitionError extends PortraitError {}
/** Raised when configuration is invalid; start-up stops. */
export class ConfigError extends PortraitError {}
/** Raised when a store fails or returns corrupt data. */
export class StoreError extends PortraitError {}
/** Raised when the named thing does not exist. */
export class NotFoundError extends PortraitError {}

/** Wraps anything thrown into a PortraitError, keeping it as `cause`. */
export function toPortraitError(err: unknown): PortraitError {
  if (err instanceof PortraitError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PortraitError('PRT_INTERNAL', message, {}, { cause: err });
}

/** Quotes a value for an error message, shortening long ones. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'bigint' ? `${value}` : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function httpReason(status: number): string {
  switch (status) {
    case 400: return 'Bad Request';
    case 401: return 'Unauthorized';
    case 403: return 'Forbidden';
    case 404: return 'Not Found';
    case 409: return 'Conflict';
    case 413: return 'Payload Too Large';
    case 415: return 'Unsupported Media Type';
    case 429: return 'Too Many Requests';
    case 503: return 'Service Unavailable';
    case 504: return 'Gateway Timeout';
    default: return 'Internal Server Error';
  }
}
