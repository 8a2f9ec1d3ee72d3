import type { ErrorCode } from './codes.js';

/** Structured context carried by an error; values must be JSON-serialisable. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export interface FerryErrorOptions {
  readonly details?: ErrorDetails;
  readonly hint?: string;
  readonly cause?: unknown;
}

/**
 * The one error class of ferry. Callers match on `code`, never on the message.
 * Messages follow "Cannot <action>: <reason>".
 */
export class FerryError extends Error {
  override readonly name = 'FerryError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.hint = options.hint;
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails; hint?: string } {
    return {
      code: this.code,
      message: this.message,
      details: this.details,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    };
  }
}

/** True when `error` is a FerryError, optionally with the given code. */
export function isFerryError(error: unknown, code?: ErrorCode): error is FerryError {
  return error instanceof FerryError && (code === undefined || error.code === code);
}
