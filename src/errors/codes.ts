/**
 * The registry of every error code Portrait reports: one place for the code,
 * the HTTP status the serving layer maps it to, whether retrying can help,
 * and a one-line summary. `docs/errors.md` documents each code with how to
 * fix it; a test keeps that file and this table in sync.
 */
export const errorCodes = {
  PRT_CONFIG_INVALID: { status: 500, retryable: false, summary: 'a configuration setting is invalid' },

  PRT_INGEST_BAD_JSON: { status: 400, retryable: false, summary: 'the request body or a line of it is not valid JSON' },
  PRT_INGEST_BAD_CSV: { status: 400, retryable: false, summary: 'a CSV row does not have the columns the schema declares' },
  PRT_INGEST_MISSING_FIELD: { status: 400, retryable: false, summary: 'an event lacks a required field' },
  PRT_INGEST_WRONG_TYPE: { status: 400, retryable: false, summary: 'an event field has the wrong type' },
  PRT_INGEST_UNKNOWN_EVENT_TYPE: { status: 400, retryable: false, summary: 'the event type is not declared in the event catalog' },
  PRT_INGEST_UNKNOWN_FIELD: { status: 400, retryable: false, summary: 'an event carries a field its type does not declare' },
  PRT_INGEST_BAD_TIME: { status: 400, retryable: false, summary: 'the event time is missing or not a valid time' },
  PRT_INGEST_FUTURE_EVENT: { status: 400, retryable: false, summary: 'the event time is further in the future than allowed' },
  PRT_INGEST_FILTERED: { status: 400, retryable: false, summary: 'the schema filter rejected the input' },
  PRT_INGEST_BODY_TOO_LARGE: { status: 413, retryable: false, summary: 'the request body exceeds the configured limit' },
  PRT_INGEST_UNSUPPORTED_MEDIA: { status: 415, retryable: false, summary: 'the request content type is not accepted' },
  PRT_INGEST_UNKNOWN_SCHEMA: { status: 400, retryable: false, summary: 'the named input schema does not exist' },
  PRT_INGEST_OVERLOADED: { status: 503, retryable: true, summary: 'the engine lags too far behind the log to accept more events now' },

  PRT_ENGINE_LATE_EVENT: { status: 400, retryable: false, summary: 'an event arrived later than the allowed lateness' },
  PRT_ENGINE_NOT_READY: { status: 503, retryable: true, summary: 'the engine is still restoring state' },

  PRT_DEF_INVALID: { status: 400, retryable: false, summary: 'a definition document does not satisfy its schema' },
  PRT_DEF_EXPRESSION: { status: 400, retryable: false, summary: 'an expression in a definition does not compile' },
  PRT_DEF_DEPENDENCY: { status: 409, retryable: false, summary: 'a definition depends on something missing, offline or cyclic' },
  PRT_DEF_NOT_FOUND: { status: 404, retryable: false, summary: 'no definition has this id' },
  PRT_DEF_EXISTS: { status: 409, retryable: false, summary: 'a definition with this id already exists' },
  PRT_DEF_VERSION_CONFLICT: { status: 409, retryable: false, summary: 'the definition changed since the version the caller read' },
  PRT_DEF_BAD_TRANSITION: { status: 409, retryable: false, summary: 'the lifecycle does not allow this status change' },

  PRT_PROFILE_NOT_FOUND: { status: 404, retryable: false, summary: 'no profile exists for this entity id' },
  PRT_DECISION_NOT_FOUND: { status: 404, retryable: false, summary: 'no stored decision has this id' },

  PRT_SERVING_BAD_REQUEST: { status: 400, retryable: false, summary: 'the request does not match the API contract' },
  PRT_SERVING_NOT_FOUND: { status: 404, retryable: false, summary: 'no route matches the request' },
  PRT_SERVING_TIMEOUT: { status: 504, retryable: true, summary: 'the request waited longer than its time limit' },

  PRT_STORE_UNAVAILABLE: { status: 503, retryable: true, summary: 'a store did not answer or failed' },
  PRT_STORE_CORRUPT: { status: 500, retryable: false, summary: 'stored data failed an integrity check' },
  PRT_STORE_LOCKED: { status: 500, retryable: false, summary: 'another process holds the data directory' },

  PRT_INTERNAL: { status: 500, retryable: false, summary: 'an unexpected internal error' },
} as const satisfies Record<string, { status: number; retryable: boolean; summary: string }>;

/** Every error code Portrait can report. */
export type ErrorCode = keyof typeof errorCodes;
