import { status } from '@grpc/grpc-js';

/**
 * Errors that cross a gRPC boundary carry their status code here, so call sites
 * throw meaning ("not found", "bad input") and the service edge maps it once.
 * `retryable` marks errors a caller should retry after a backoff.
 */
export class NfshaError extends Error {
  constructor(
    message: string,
    readonly code: status,
    readonly retryable = false,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidArgument extends NfshaError {
  constructor(message: string) { super(message, status.INVALID_ARGUMENT); }
}
export class NotFound extends NfshaError {
  constructor(message: string) { super(message, status.NOT_FOUND); }
}
export class AlreadyExists extends NfshaError {
  constructor(message: string) { super(message, status.ALREADY_EXISTS, true); }
}
export class FailedPrecondition extends NfshaError {
  constructor(message: string) { super(message, status.FAILED_PRECONDITION); }
}
export class Unavailable extends NfshaError {
  constructor(message: string) { super(message, status.UNAVAILABLE, true); }
}
export class PermissionDenied extends NfshaError {
  constructor(message: string) { super(message, status.PERMISSION_DENIED); }
}
/** A limit was reached (sessions, clients, pending logins, introduction rate): retry later. */
export class ResourceExhausted extends NfshaError {
  constructor(message: string, readonly limit: string) { super(message, status.RESOURCE_EXHAUSTED, true); }
}
export class Aborted extends NfshaError {
  constructor(message: string) { super(message, status.ABORTED, true); }
}

/** The gRPC ServiceError shape for an error, for handler callbacks and stream.destroy. */
export function toServiceError(err: unknown): { code: status; details: string; message: string } {
  if (err instanceof NfshaError) return { code: err.code, details: err.message, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: message, message };
}

