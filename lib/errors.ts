/** A field-level complaint inside a validation problem. */
export interface FieldError {
  /** JSON pointer-ish path such as `items.0.quantity`. */
  field: string;
  message: string;
}

interface AppErrorOptions {
  cause?: unknown;
  detail?: string;
}

/**
 * The one error family of comanda. Every subclass has a stable `code` callers switch on, the HTTP `status` it
 * maps to, whether its message may be shown to a client (`expose`) and whether retrying may succeed
 * (`recoverable`), which decides retry or dead-letter in consumers.
 */
export abstract class AppError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  abstract readonly title: string;
  readonly expose: boolean = true;
  readonly recoverable: boolean = false;
  /** Extra members of the problem+json body (RFC 9457 extensions), for clients to act on. */
  readonly extensions: Record<string, unknown> = {};

  constructor(message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  readonly code = 'VALIDATION_FAILED';
  readonly status: number;
  readonly title = 'Your request is not valid';
  constructor(
    message: string,
    readonly errors: FieldError[] = [],
    status: 400 | 422 = 422,
  ) {
    super(message);
    this.status = status;
  }
}

export class MalformedRequestError extends AppError {
  readonly code = 'MALFORMED_REQUEST';
  readonly status = 400;
  readonly title = 'The request could not be read';
}

export class PayloadTooLargeError extends AppError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly status = 413;
  readonly title = 'The request body is too large';
}

export class UnsupportedMediaTypeError extends AppError {
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
  readonly status = 415;
  readonly title = 'Unsupported content type';
}

export class UnauthorizedError extends AppError {
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
  readonly title = 'Authentication required';
}

export class ForbiddenError extends AppError {
  readonly code = 'FORBIDDEN';
  readonly status = 403;
  readonly title = 'Not allowed';
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND';
  readonly status = 404;
  readonly title = 'Not found';
}

export class IdempotencyKeyMissingError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_MISSING';
  readonly status = 400;
  readonly title = 'Idempotency-Key is required';
}

export class IdempotencyKeyInvalidError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_INVALID';
  readonly status = 400;
  readonly title = 'Idempotency-Key is not valid';
}

/** The same key is being processed by another request right now. */
export class IdempotencyKeyInFlightError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_IN_FLIGHT';
  readonly status = 409;
  readonly title = 'A request with this Idempotency-Key is still being processed';
  readonly retryAfterSeconds = 1;
}

/** The key was used before with a different request body. */
export class IdempotencyKeyReusedError extends AppError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  readonly status = 422;
  readonly title = 'This Idempotency-Key was used with a different request';
}

export class ConflictError extends AppError {
  readonly code = 'CONFLICT';
  readonly status = 409;
  readonly title = 'Conflict';
}

/** The RFC 6749 §5.2 error codes the token endpoint answers with. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope';

/**
 * A refused token request. The token endpoint alone writes it as RFC 6749 JSON (`{error, error_description}`);
 * anywhere else it is a problem like any other. `invalid_client` is 401, the rest 400.
 */
export class OAuthError extends AppError {
  readonly code: string;
  readonly status: 400 | 401;
  readonly title = 'The token request was refused';
  constructor(
    readonly error: OAuthErrorCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.code = `OAUTH_${error.toUpperCase()}`;
    this.status = error === 'invalid_client' ? 401 : 400;
  }
}

/** Too many failed logins for one account or from one address: wait `retryAfterSeconds`. */
export class TooManyAttemptsError extends AppError {
  readonly code = 'TOO_MANY_ATTEMPTS';
  readonly status = 429;
  readonly title = 'Too many failed attempts';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The request's `If-Match` names a version that is no longer current: someone else changed it first. */
export class PreconditionFailedError extends AppError {
  readonly code = 'PRECONDITION_FAILED';
  readonly status = 412;
  readonly title = 'The resource changed since you read it';
}

/** A dependency (PostgreSQL, RabbitMQ, Redis) cannot be reached or answered too slowly; retrying later may work. */
export class ServiceUnavailableError extends AppError {
  readonly code = 'SERVICE_UNAVAILABLE';
  readonly status = 503;
  readonly title = 'Service temporarily unavailable';
  override readonly recoverable = true;
  readonly retryAfterSeconds = 2;
}

/** A message that can never be processed (malformed, unknown type, unknown order): dead-letter it. */
export class PermanentMessageError extends AppError {
  readonly code = 'PERMANENT_MESSAGE_FAILURE';
  readonly status = 422;
  readonly title = 'Message cannot be processed';
  override readonly expose = false;
}

/** Anything that is not an AppError: never shown to a client. */
export class InternalError extends AppError {
  readonly code = 'INTERNAL';
  readonly status = 500;
  readonly title = 'Internal error';
  override readonly expose = false;
}
