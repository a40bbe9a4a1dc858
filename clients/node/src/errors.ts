/**
 * Typed errors built from the server's google.rpc.Status details.
 *
 * Every error the server sends carries a google.rpc.ErrorInfo with a stable UPPER_SNAKE
 * `reason` (domain "jobqueue.dev"), and INVALID_ARGUMENT also a google.rpc.BadRequest naming
 * the field. gRPC carries the serialized Status in the `grpc-status-details-bin` trailer;
 * Lease stream confirmations carry it as a field. Both map to the same classes here, so
 * callers never parse message text.
 */

import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";

import type { Any } from "./gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo } from "./gen/google/rpc/error_details.js";
import { Status } from "./gen/google/rpc/status.js";

/** The ErrorInfo domain of the server's errors. */
export const ERROR_DOMAIN = "jobqueue.dev";
/** The trailer in which gRPC carries the serialized google.rpc.Status. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

export interface JobQueueErrorOptions {
  /** The gRPC status code. */
  code?: GrpcStatus;
  /** The ErrorInfo reason, e.g. `LEASE_LOST`. */
  reason?: string;
  /** The request field at fault (dotted path, e.g. `requests[2].queue`). */
  field?: string;
  cause?: unknown;
}

/** Base of every error the library raises for a refused or failed call. */
export class JobQueueError extends Error {
  /** Class defaults; instances carry what the server sent. */
  static readonly defaultCode: GrpcStatus = GrpcStatus.UNKNOWN;
  static readonly defaultReason: string = "UNKNOWN";

  /** The gRPC status code (`status` from @grpc/grpc-js). */
  readonly code: GrpcStatus;
  /** The stable ErrorInfo reason, e.g. `JOB_NOT_FOUND`. */
  readonly reason: string;
  /** The request field at fault, when the server named one. */
  readonly field: string | undefined;

  constructor(message: string, options: JobQueueErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const type = new.target as typeof JobQueueError;
    this.name = type.name;
    this.code = options.code ?? type.defaultCode;
    this.reason = options.reason ?? type.defaultReason;
    this.field = options.field;
  }

  /** The status code's name, e.g. `FAILED_PRECONDITION`. */
  get codeName(): string {
    return GrpcStatus[this.code] ?? String(this.code);
  }

  /** Whether the same call may succeed when tried again later. */
  get retryable(): boolean {
    return false;
  }
}

/** A request field was malformed or out of range; nothing was changed. */
export class InvalidArgumentError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.INVALID_ARGUMENT;
  static override readonly defaultReason: string = "INVALID_ARGUMENT";
}

/** The job does not exist (never did, or its retention window passed). */
export class NotFoundError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.NOT_FOUND;
  static override readonly defaultReason: string = "JOB_NOT_FOUND";
}

/** The lease token is no longer current: the lease expired or was settled already. */
export class LeaseLostError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.FAILED_PRECONDITION;
  static override readonly defaultReason: string = "LEASE_LOST";
}

/** The job's state does not allow the call (cancel an active job, retry a queued one). */
export class WrongStateError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.FAILED_PRECONDITION;
  static override readonly defaultReason: string = "WRONG_STATE";
}

/** A limit was reached: payload or batch size, Redis memory. */
export class ResourceExhaustedError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.RESOURCE_EXHAUSTED;
  static override readonly defaultReason: string = "RESOURCE_EXHAUSTED";
}

/** The server or its Redis could not be reached; the call may be retried. */
export class UnavailableError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.UNAVAILABLE;
  static override readonly defaultReason: string = "UNAVAILABLE";
  override get retryable(): boolean {
    return true;
  }
}

/** The call (or `waitFor`) did not finish in time; a call may or may not have taken effect. */
export class DeadlineExceededError extends UnavailableError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.DEADLINE_EXCEEDED;
  static override readonly defaultReason: string = "DEADLINE_EXCEEDED";
}

/** The call carried no valid credentials. */
export class UnauthenticatedError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.UNAUTHENTICATED;
  static override readonly defaultReason: string = "UNAUTHENTICATED";
}

/** The credentials do not allow the call. */
export class PermissionDeniedError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.PERMISSION_DENIED;
  static override readonly defaultReason: string = "PERMISSION_DENIED";
}

/** Thrown by a job handler to fail the job for good, whatever attempts are left. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetryableError";
  }
}

/** Thrown by a job handler to retry after `delayMs` instead of the job's backoff. */
export class RetryAfterError extends Error {
  readonly delayMs: number;
  constructor(message: string, delayMs: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RetryAfterError";
    this.delayMs = delayMs;
  }
}

type ErrorClass = new (message: string, options?: JobQueueErrorOptions) => JobQueueError;

/** The server's ErrorInfo reasons. */
const BY_REASON: Record<string, ErrorClass> = {
  INVALID_ARGUMENT: InvalidArgumentError,
  JOB_NOT_FOUND: NotFoundError,
  LEASE_LOST: LeaseLostError,
  WRONG_STATE: WrongStateError,
  STORE_UNAVAILABLE: UnavailableError,
  SERVER_SHUTTING_DOWN: UnavailableError,
  STORE_FULL: ResourceExhaustedError,
};

/** The fallback when a status has no ErrorInfo (errors made by gRPC itself, proxies, ...). */
const BY_CODE = new Map<GrpcStatus, ErrorClass>([
  [GrpcStatus.INVALID_ARGUMENT, InvalidArgumentError],
  [GrpcStatus.OUT_OF_RANGE, InvalidArgumentError],
  [GrpcStatus.NOT_FOUND, NotFoundError],
  [GrpcStatus.FAILED_PRECONDITION, WrongStateError],
  [GrpcStatus.RESOURCE_EXHAUSTED, ResourceExhaustedError],
  [GrpcStatus.UNAVAILABLE, UnavailableError],
  [GrpcStatus.DEADLINE_EXCEEDED, DeadlineExceededError],
  [GrpcStatus.UNAUTHENTICATED, UnauthenticatedError],
  [GrpcStatus.PERMISSION_DENIED, PermissionDeniedError],
]);

/** The message type an Any holds: the part of its type URL after the last slash. */
function typeName(detail: Any): string {
  return detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1);
}

/** The ErrorInfo reason and the first BadRequest field of a status's details. */
export function parseDetails(status: Status | undefined): { reason?: string; field?: string } {
  const parsed: { reason?: string; field?: string } = {};
  for (const detail of status?.details ?? []) {
    try {
      if (typeName(detail) === "google.rpc.ErrorInfo") {
        parsed.reason = ErrorInfo.decode(detail.value).reason;
      } else if (typeName(detail) === "google.rpc.BadRequest") {
        const violation = BadRequest.decode(detail.value).fieldViolations[0];
        if (violation !== undefined) parsed.field = violation.field;
      }
    } catch {
      // A detail that does not decode says nothing we can use; the code still does.
    }
  }
  return parsed;
}

function build(code: GrpcStatus, message: string, status: Status | undefined, cause?: unknown): JobQueueError {
  const { reason, field } = parseDetails(status);
  const type = (reason !== undefined ? BY_REASON[reason] : undefined) ?? BY_CODE.get(code) ?? JobQueueError;
  const options: JobQueueErrorOptions = { code, cause };
  if (reason !== undefined) options.reason = reason;
  if (field !== undefined) options.field = field;
  return new type(message, options);
}

/** The typed error a google.rpc.Status describes (a Confirmation's), or undefined when OK. */
export function fromStatus(status: Status | undefined): JobQueueError | undefined {
  if (status === undefined || status.code === GrpcStatus.OK) return undefined;
  return build(status.code, status.message, status);
}

/** Decodes the `grpc-status-details-bin` trailer of a failed call, if it has one. */
export function statusFromTrailers(error: Pick<ServiceError, "metadata">): Status | undefined {
  const values = error.metadata?.get(STATUS_DETAILS_KEY) ?? [];
  for (const value of values) {
    if (typeof value === "string") continue;
    try {
      return Status.decode(value);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The typed error for a failed gRPC call (anything else is returned unchanged). */
export function fromServiceError(error: unknown): unknown {
  if (!isServiceError(error)) return error;
  const status = statusFromTrailers(error);
  return build(error.code, status?.message || error.details || error.message, status, error);
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number" && "metadata" in error;
}
