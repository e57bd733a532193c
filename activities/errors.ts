/**
 * Error classes as `ApplicationFailure` types. Permanent failures are thrown with
 * `ApplicationFailure.nonRetryable(message, type)`; these names are what the workflow reports
 * and what retry policies list as non-retryable.
 */
export const ErrorType = {
  InvalidSpec: 'InvalidSpec',
  PreflightFailed: 'PreflightFailed',
  NotFound: 'NotFound',
  Forbidden: 'Forbidden',
  Unauthorized: 'Unauthorized',
  BadRequest: 'BadRequest',
  Unprocessable: 'Unprocessable',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  VerificationFailed: 'VerificationFailed',
  UnsupportedProvider: 'UnsupportedProvider',
  UnsupportedRouter: 'UnsupportedRouter',
  /** The metric backend refused the query itself (PromQL parse error, bad_data): retrying cannot help. */
  QueryRejected: 'QueryRejected',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

export const NON_RETRYABLE_ERROR_TYPES: string[] = Object.values(ErrorType);
