'use strict';
/**
 * {@link ProsodiaError}: every failure the client reports, with the gRPC status code.
 * @module
 */

const { status } = require('@grpc/grpc-js');

/** @type {Record<number, string>} */
const CODE_NAMES = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v, k]),
);

/**
 * A request failed: the server's gRPC status code and its message.
 *
 * `code` is the numeric code (compare it with `grpc.status.INVALID_ARGUMENT` etc. from
 * `@grpc/grpc-js`, re-exported as `prosodia.status`), `codeName` its name
 * (`"INVALID_ARGUMENT"`), `details` the server's explanation; `message` is
 * `"CODE_NAME: details"`. Input the client refuses before sending anything (an unreadable
 * file, an unknown encoding) is reported the same way with `INVALID_ARGUMENT`.
 */
class ProsodiaError extends Error {
  /**
   * @param {number} code a gRPC status code
   * @param {string} details what went wrong
   */
  constructor(code, details) {
    const codeName = CODE_NAMES[code] ?? `UNKNOWN_CODE_${code}`;
    super(`${codeName}: ${details}`);
    this.name = 'ProsodiaError';
    /** The gRPC status code, e.g. 3 for INVALID_ARGUMENT. */
    this.code = code;
    /** The status code's name, e.g. `"NOT_FOUND"`. */
    this.codeName = codeName;
    /** The server's (or the client's) explanation. */
    this.details = details;
  }

  /**
   * Wraps an error from `@grpc/grpc-js` (a `ServiceError`: `code`, `details`).
   * @param {any} error
   * @returns {ProsodiaError}
   */
  static fromGrpc(error) {
    if (error instanceof ProsodiaError) return error;
    const code = typeof error?.code === 'number' ? error.code : status.UNKNOWN;
    const details = typeof error?.details === 'string' ? error.details : String(error?.message ?? error);
    const wrapped = new ProsodiaError(code, details);
    wrapped.cause = error;
    return wrapped;
  }
}

/**
 * An INVALID_ARGUMENT error raised by the client itself.
 * @param {string} details
 * @returns {ProsodiaError}
 */
function invalidArgument(details) {
  return new ProsodiaError(status.INVALID_ARGUMENT, details);
}

module.exports = { ProsodiaError, invalidArgument };
