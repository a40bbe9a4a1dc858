/**
 * Typed errors built from the server's google.rpc.Status details.
 *
 * Every error the server sends carries a google.rpc.ErrorInfo (domain "jobqueue.dev") whose
 * `reason` is the name of a value of the contract's ErrorReason enum, and INVALID_ARGUMENT
 * also a google.rpc.BadRequest naming the field. gRPC carries the serialized Status in the
 * `grpc-status-details-bin` trailer; Lease stream confirmations carry it as a field. Both
 * map to the same classes here (one per ErrorReason value), so callers never parse text.
 */

import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";

import type { Any } from "./gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo } from "./gen/google/rpc/error_details.js";
import { Status } from "./gen/google/rpc/status.js";
import { ErrorReason } from "./gen/jobqueue/v1/error_reason.js";

/** The ErrorInfo domain of the server's errors. */
export const ERROR_DOMAIN = "jobqueue.dev";
/** The trailer in which gRPC carries the serialized google.rpc.Status. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

export interface JobQueueErrorOptions {
  /** The gRPC status code. */
  code?: GrpcStatus;
  /** The ErrorInfo reason, e.g. `LEASE_LOST` (an ErrorReason value name). */
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
  /**
   * The server's ErrorInfo reason, an ErrorReason value name (`JOB_NOT_FOUND`); without one,
   * the class's default (the code's name, `UNAVAILABLE`), or the library's own (`WAIT_TIMEOUT`).
   */
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

// -- one class per status code, for statuses without an ErrorInfo (made by gRPC itself,
// a proxy, a deadline) and as the bases of the reason classes below -----------------------

/** A request field was malformed or out of range; nothing was changed. Do not retry. */
export class InvalidArgumentError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.INVALID_ARGUMENT;
  static override readonly defaultReason: string = ErrorReason[ErrorReason.INVALID_ARGUMENT];
}

/** The job does not exist (never did, or its retention window passed). Do not retry. */
export class NotFoundError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.NOT_FOUND;
  static override readonly defaultReason: string = ErrorReason[ErrorReason.JOB_NOT_FOUND];
}

/** What the call would create exists already (ScheduleExistsError); nothing was changed. Do not retry. */
export class AlreadyExistsError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.ALREADY_EXISTS;
  static override readonly defaultReason: string = "ALREADY_EXISTS";
}

/** The call is not allowed now; the subclass (LeaseLostError, WrongStateError, ...) says why. */
export class FailedPreconditionError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.FAILED_PRECONDITION;
  static override readonly defaultReason: string = "FAILED_PRECONDITION";
}

/** A limit was reached: a message over the size limit, the store's memory (StoreFullError). */
export class ResourceExhaustedError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.RESOURCE_EXHAUSTED;
  static override readonly defaultReason: string = "RESOURCE_EXHAUSTED";
}

/** The server or its store could not be reached or could not finish; retry with backoff. */
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

/** The call carried no valid credentials; the subclass (TokenMissingError, ...) says which way. */
export class UnauthenticatedError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.UNAUTHENTICATED;
  static override readonly defaultReason: string = "UNAUTHENTICATED";
}

/** The credentials do not allow the call; the subclass (RoleNotAllowedError, ...) says why. */
export class PermissionDeniedError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.PERMISSION_DENIED;
  static override readonly defaultReason: string = "PERMISSION_DENIED";
}

/**
 * The server met a state it does not understand (an unknown reply from its store, a bug).
 * Nothing is known about the write: report it, and retry only idempotent calls.
 */
export class InternalError extends JobQueueError {
  static override readonly defaultCode: GrpcStatus = GrpcStatus.INTERNAL;
  static override readonly defaultReason: string = ErrorReason[ErrorReason.INTERNAL];
}

// -- one class per ErrorReason the server sends (proto/jobqueue/v1/error_reason.proto) -----

/** The lease token is no longer current (expired, settled, or its stream ended). Drop the result. */
export class LeaseLostError extends FailedPreconditionError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.LEASE_LOST];
}

/** The job's state does not allow the call (cancel an active job, retry a queued one). */
export class WrongStateError extends FailedPreconditionError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.WRONG_STATE];
}

/**
 * `durability: "fsynced"` was asked for (or is the server's default) but the store cannot
 * confirm writes on disk (its append-only file is off, or it is too old), or "replicated"
 * was but the primary has too few replicas. Nothing was written: send the call at
 * "applied", or wait for the operator.
 */
export class DurabilityUnavailableError extends FailedPreconditionError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.DURABILITY_UNAVAILABLE];
}

/**
 * A "fsynced" write was applied but not confirmed on disk in time: it stands, and may not
 * survive a power loss. A retry finds it (the same job with an idempotency key).
 */
export class FsyncNotConfirmedError extends UnavailableError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.FSYNC_NOT_CONFIRMED];
}

/**
 * A "replicated" write was applied on the primary but not confirmed by enough replicas in
 * time: it stands, and a failover now may lose it. A retry finds it (the same job with an
 * idempotency key).
 */
export class ReplicationNotConfirmedError extends UnavailableError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.REPLICATION_NOT_CONFIRMED];
}

/** The job store could not be reached or did not answer in time; the write may have happened. */
export class StoreUnavailableError extends UnavailableError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.STORE_UNAVAILABLE];
}

/** The job store is out of memory and refused the write; nothing was written. */
export class StoreFullError extends ResourceExhaustedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.STORE_FULL];
}

/** The server is shutting down; reconnect with backoff, to another server if there is one. */
export class ServerShuttingDownError extends UnavailableError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.SERVER_SHUTTING_DOWN];
}

/** The server requires a token (`jobq serve --auth`) and the call carried none: set `token` or JOBQ_TOKEN. */
export class TokenMissingError extends UnauthenticatedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.TOKEN_MISSING];
}

/** The server does not know the token (malformed, never issued, or revoked). Do not retry with it. */
export class TokenInvalidError extends UnauthenticatedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.TOKEN_INVALID];
}

/** The token's expiry time has passed: get a new token. */
export class TokenExpiredError extends UnauthenticatedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.TOKEN_EXPIRED];
}

/** The token's role (producer, worker, admin) may not call this method. Do not retry with it. */
export class RoleNotAllowedError extends PermissionDeniedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.ROLE_NOT_ALLOWED];
}

/** None of the token's queue patterns matches the queue the request names; `.field` names the field. */
export class QueueNotAllowedError extends PermissionDeniedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.QUEUE_NOT_ALLOWED];
}

/** RevokeToken named a token id that does not exist (never issued, or revoked already). */
export class TokenNotFoundError extends NotFoundError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.TOKEN_NOT_FOUND];
}

/** CreateToken was refused: the server holds as many tokens as it allows. Revoke unused ones first. */
export class TokenLimitReachedError extends ResourceExhaustedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.TOKEN_LIMIT_REACHED];
}

/** The request would create a queue past the server's `max_queues`. Nothing was written. */
export class QueueLimitReachedError extends ResourceExhaustedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.QUEUE_LIMIT_REACHED];
}

/** No schedule has the name the request gives (never created, or deleted). Nothing was changed. */
export class ScheduleNotFoundError extends NotFoundError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.SCHEDULE_NOT_FOUND];
}

/** CreateSchedule named a schedule that exists. Nothing was changed: update it, or use another name. */
export class ScheduleExistsError extends AlreadyExistsError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.SCHEDULE_EXISTS];
}

/** CreateSchedule was refused: the server holds `max_schedules` schedules. Delete unused ones first. */
export class ScheduleLimitReachedError extends ResourceExhaustedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.SCHEDULE_LIMIT_REACHED];
}

/** No webhook has the id the request gives (never created, or deleted). Nothing was changed. */
export class WebhookNotFoundError extends NotFoundError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.WEBHOOK_NOT_FOUND];
}

/** CreateWebhook was refused: the server holds as many webhooks as it allows (100). Delete unused ones first. */
export class WebhookLimitReachedError extends ResourceExhaustedError {
  static override readonly defaultReason: string = ErrorReason[ErrorReason.WEBHOOK_LIMIT_REACHED];
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

/** Why the server told a worker to stop a job: Cancel was called, or the attempt ran past its execution timeout. */
export type JobStopReason = "cancelled" | "timed_out";

/**
 * The reason of a handler's `ctx.signal` when the server told the worker to stop the job:
 * `reason` "cancelled" (Client.cancel: the job is cancelled) or "timed_out" (the attempt ran
 * past the job's `executionTimeoutMs`: it failed, and is retried or dead). The job's lease is
 * gone: whatever the handler returns or throws afterwards is ignored.
 */
export class JobStoppedError extends Error {
  readonly reason: JobStopReason;
  readonly jobId: string;
  constructor(jobId: string, reason: JobStopReason) {
    super(reason === "cancelled" ? `job ${jobId} was cancelled` : `job ${jobId} ran past its execution timeout`);
    this.name = "JobStoppedError";
    this.jobId = jobId;
    this.reason = reason;
  }
}

/** The ErrorReason values the server sends (all but the zero value). */
export type ServerReason = Exclude<ErrorReason, ErrorReason.ERROR_REASON_UNSPECIFIED>;

type ErrorClass = (new (message: string, options?: JobQueueErrorOptions) => JobQueueError) & {
  readonly defaultReason: string;
};

/**
 * The class of each reason of the contract's ErrorReason enum. A Record over the generated
 * enum, so a value added to the proto fails the build until it has its class here.
 */
export const ERROR_CLASSES: Readonly<Record<ServerReason, ErrorClass>> = {
  [ErrorReason.INVALID_ARGUMENT]: InvalidArgumentError,
  [ErrorReason.JOB_NOT_FOUND]: NotFoundError,
  [ErrorReason.LEASE_LOST]: LeaseLostError,
  [ErrorReason.WRONG_STATE]: WrongStateError,
  [ErrorReason.DURABILITY_UNAVAILABLE]: DurabilityUnavailableError,
  [ErrorReason.FSYNC_NOT_CONFIRMED]: FsyncNotConfirmedError,
  [ErrorReason.REPLICATION_NOT_CONFIRMED]: ReplicationNotConfirmedError,
  [ErrorReason.STORE_UNAVAILABLE]: StoreUnavailableError,
  [ErrorReason.STORE_FULL]: StoreFullError,
  [ErrorReason.SERVER_SHUTTING_DOWN]: ServerShuttingDownError,
  [ErrorReason.INTERNAL]: InternalError,
  [ErrorReason.TOKEN_MISSING]: TokenMissingError,
  [ErrorReason.TOKEN_INVALID]: TokenInvalidError,
  [ErrorReason.TOKEN_EXPIRED]: TokenExpiredError,
  [ErrorReason.ROLE_NOT_ALLOWED]: RoleNotAllowedError,
  [ErrorReason.QUEUE_NOT_ALLOWED]: QueueNotAllowedError,
  [ErrorReason.TOKEN_NOT_FOUND]: TokenNotFoundError,
  [ErrorReason.TOKEN_LIMIT_REACHED]: TokenLimitReachedError,
  [ErrorReason.QUEUE_LIMIT_REACHED]: QueueLimitReachedError,
  [ErrorReason.SCHEDULE_NOT_FOUND]: ScheduleNotFoundError,
  [ErrorReason.SCHEDULE_EXISTS]: ScheduleExistsError,
  [ErrorReason.SCHEDULE_LIMIT_REACHED]: ScheduleLimitReachedError,
  [ErrorReason.WEBHOOK_NOT_FOUND]: WebhookNotFoundError,
  [ErrorReason.WEBHOOK_LIMIT_REACHED]: WebhookLimitReachedError,
};

/** The fallback when a status has no ErrorInfo of ours, or a reason newer than this library. */
const BY_CODE = new Map<GrpcStatus, ErrorClass>([
  [GrpcStatus.INVALID_ARGUMENT, InvalidArgumentError],
  [GrpcStatus.OUT_OF_RANGE, InvalidArgumentError],
  [GrpcStatus.NOT_FOUND, NotFoundError],
  [GrpcStatus.ALREADY_EXISTS, AlreadyExistsError],
  [GrpcStatus.FAILED_PRECONDITION, FailedPreconditionError],
  [GrpcStatus.RESOURCE_EXHAUSTED, ResourceExhaustedError],
  [GrpcStatus.UNAVAILABLE, UnavailableError],
  [GrpcStatus.DEADLINE_EXCEEDED, DeadlineExceededError],
  [GrpcStatus.UNAUTHENTICATED, UnauthenticatedError],
  [GrpcStatus.PERMISSION_DENIED, PermissionDeniedError],
  [GrpcStatus.INTERNAL, InternalError],
]);

/** The ErrorReason a reason string names (the wire carries value names), if it is one. */
export function errorReason(name: string): ServerReason | undefined {
  // Numeric TS enums also map values back to names ("3" -> "LEASE_LOST"): accept names only.
  const value: unknown = (ErrorReason as unknown as Record<string, unknown>)[name];
  if (!Object.hasOwn(ErrorReason, name) || typeof value !== "number") return undefined;
  return value === ErrorReason.ERROR_REASON_UNSPECIFIED ? undefined : (value as ServerReason);
}

/** The reason's class; the code's when the reason is not ours (another domain, a newer server). */
function classFor(code: GrpcStatus, reason: ServerReason | undefined): ErrorClass {
  return (reason === undefined ? undefined : ERROR_CLASSES[reason]) ?? BY_CODE.get(code) ?? JobQueueError;
}

/** The message type an Any holds: the part of its type URL after the last slash. */
function typeName(detail: Any): string {
  return detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1);
}

/** What a status's details tell: the ErrorInfo (reason and domain), the first BadRequest field. */
export interface StatusDetails {
  reason?: string;
  domain?: string;
  field?: string;
}

/** The ErrorInfo and the first BadRequest field of a status's details; the rest is ignored. */
export function parseDetails(status: Status | undefined): StatusDetails {
  const parsed: StatusDetails = {};
  for (const detail of status?.details ?? []) {
    try {
      if (typeName(detail) === "google.rpc.ErrorInfo") {
        const info = ErrorInfo.decode(detail.value);
        parsed.reason = info.reason;
        parsed.domain = info.domain;
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
  const { reason, domain, field } = parseDetails(status);
  // A reason is only ours to interpret in our domain (a gateway's ErrorInfo may pass through).
  const ours = reason !== undefined && domain === ERROR_DOMAIN ? errorReason(reason) : undefined;
  const options: JobQueueErrorOptions = { code, cause };
  if (reason !== undefined && reason !== "") options.reason = reason;
  if (field !== undefined) options.field = field;
  return new (classFor(code, ours))(message, options);
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
