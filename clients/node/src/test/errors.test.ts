import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";

import {
  AlreadyExistsError,
  DurabilityUnavailableError,
  ERROR_CLASSES,
  FailedPreconditionError,
  FsyncNotConfirmedError,
  InternalError,
  InvalidArgumentError,
  JobQueueError,
  LeaseLostError,
  NotFoundError,
  PermissionDeniedError,
  QueueNotAllowedError,
  ReplicationNotConfirmedError,
  ResourceExhaustedError,
  RoleNotAllowedError,
  ScheduleExistsError,
  ScheduleLimitReachedError,
  ScheduleNotFoundError,
  ServerShuttingDownError,
  StoreFullError,
  StoreUnavailableError,
  TokenExpiredError,
  TokenInvalidError,
  TokenLimitReachedError,
  QueueLimitReachedError,
  TokenMissingError,
  TokenNotFoundError,
  UnauthenticatedError,
  UnavailableError,
  WebhookLimitReachedError,
  WebhookNotFoundError,
  WrongStateError,
  errorReason,
  fromServiceError,
  fromStatus,
  type ServerReason,
} from "../errors.js";
import type { Any } from "../gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo } from "../gen/google/rpc/error_details.js";
import { Status } from "../gen/google/rpc/status.js";
import { ErrorReason } from "../gen/jobqueue/v1/error_reason.js";
import { refusal } from "../refusal.js";

function errorInfo(reason: string, domain = "jobqueue.dev"): Any {
  return {
    typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
    value: Buffer.from(ErrorInfo.encode({ reason, domain, metadata: {} }).finish()),
  };
}

/** Every value of the generated enum but the zero value, as the server sends them. */
const SERVER_REASONS = Object.values(ErrorReason).filter(
  (value): value is ServerReason => typeof value === "number" && value !== ErrorReason.ERROR_REASON_UNSPECIFIED,
);

/** A Lease-stream confirmation's status with the given reason. */
function refused(code: GrpcStatus, reason: string): JobQueueError {
  const error = fromStatus({ code, message: reason.toLowerCase(), details: [errorInfo(reason)] });
  assert.ok(error !== undefined);
  return error;
}

function badRequest(field: string): Any {
  const message = BadRequest.encode({
    fieldViolations: [{ field, description: "is wrong", reason: "", localizedMessage: undefined }],
  });
  return { typeUrl: "type.googleapis.com/google.rpc.BadRequest", value: Buffer.from(message.finish()) };
}

/** A failed call as @grpc/grpc-js reports it, with the status details trailer. */
function serviceError(code: GrpcStatus, message: string, details: Any[]): ServiceError {
  const metadata = new Metadata();
  if (details.length > 0) {
    const status = Status.encode({ code, message, details }).finish();
    metadata.set("grpc-status-details-bin", Buffer.from(status));
  }
  return Object.assign(new Error(`${code} ${GrpcStatus[code]}: ${message}`), { code, details: message, metadata });
}

describe("errors from a failed call", () => {
  test("an INVALID_ARGUMENT with BadRequest names the field", () => {
    const error = fromServiceError(
      serviceError(GrpcStatus.INVALID_ARGUMENT, "requests[2].queue: must be ...", [
        errorInfo("INVALID_ARGUMENT"),
        badRequest("requests[2].queue"),
      ]),
    );
    assert.ok(error instanceof InvalidArgumentError);
    assert.ok(error instanceof JobQueueError);
    assert.equal(error.field, "requests[2].queue");
    assert.equal(error.reason, "INVALID_ARGUMENT");
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.message, "requests[2].queue: must be ...");
    assert.equal(error.name, "InvalidArgumentError");
    assert.equal(error.retryable, false);
  });

  test("the reason picks the class when codes are shared", () => {
    const lost = fromServiceError(serviceError(GrpcStatus.FAILED_PRECONDITION, "stale", [errorInfo("LEASE_LOST")]));
    const wrong = fromServiceError(serviceError(GrpcStatus.FAILED_PRECONDITION, "done", [errorInfo("WRONG_STATE")]));
    assert.ok(lost instanceof LeaseLostError);
    assert.equal((lost as LeaseLostError).reason, "LEASE_LOST");
    assert.ok(wrong instanceof WrongStateError);
    assert.equal((wrong as WrongStateError).code, GrpcStatus.FAILED_PRECONDITION);
  });

  test("every ErrorReason of the contract has a class of its own", () => {
    assert.equal(SERVER_REASONS.length, 24);
    const names = new Set<string>();
    for (const value of SERVER_REASONS) {
      const name = ErrorReason[value];
      const type = ERROR_CLASSES[value];
      assert.ok(type !== undefined, `${name} has no error class`);
      assert.equal(type.defaultReason, name, `${type.name} is not the class of ${name}`);
      const error = fromServiceError(serviceError(GrpcStatus.FAILED_PRECONDITION, "x", [errorInfo(name)]));
      assert.equal((error as JobQueueError).constructor, type, name);
      assert.equal((error as JobQueueError).reason, name);
      names.add(type.name);
    }
    assert.equal(names.size, SERVER_REASONS.length, "two reasons share a class");
  });

  test("each server reason maps to its class, under its code's class", () => {
    const cases: [GrpcStatus, string, new (...args: never[]) => JobQueueError, new (...args: never[]) => JobQueueError][] = [
      [GrpcStatus.NOT_FOUND, "JOB_NOT_FOUND", NotFoundError, NotFoundError],
      [GrpcStatus.FAILED_PRECONDITION, "LEASE_LOST", LeaseLostError, FailedPreconditionError],
      [GrpcStatus.FAILED_PRECONDITION, "WRONG_STATE", WrongStateError, FailedPreconditionError],
      [GrpcStatus.FAILED_PRECONDITION, "DURABILITY_UNAVAILABLE", DurabilityUnavailableError, FailedPreconditionError],
      [GrpcStatus.UNAVAILABLE, "FSYNC_NOT_CONFIRMED", FsyncNotConfirmedError, UnavailableError],
      [GrpcStatus.UNAVAILABLE, "REPLICATION_NOT_CONFIRMED", ReplicationNotConfirmedError, UnavailableError],
      [GrpcStatus.UNAVAILABLE, "STORE_UNAVAILABLE", StoreUnavailableError, UnavailableError],
      [GrpcStatus.UNAVAILABLE, "SERVER_SHUTTING_DOWN", ServerShuttingDownError, UnavailableError],
      [GrpcStatus.RESOURCE_EXHAUSTED, "STORE_FULL", StoreFullError, ResourceExhaustedError],
      [GrpcStatus.INTERNAL, "INTERNAL", InternalError, InternalError],
      [GrpcStatus.UNAUTHENTICATED, "TOKEN_MISSING", TokenMissingError, UnauthenticatedError],
      [GrpcStatus.UNAUTHENTICATED, "TOKEN_INVALID", TokenInvalidError, UnauthenticatedError],
      [GrpcStatus.UNAUTHENTICATED, "TOKEN_EXPIRED", TokenExpiredError, UnauthenticatedError],
      [GrpcStatus.PERMISSION_DENIED, "ROLE_NOT_ALLOWED", RoleNotAllowedError, PermissionDeniedError],
      [GrpcStatus.PERMISSION_DENIED, "QUEUE_NOT_ALLOWED", QueueNotAllowedError, PermissionDeniedError],
      [GrpcStatus.NOT_FOUND, "TOKEN_NOT_FOUND", TokenNotFoundError, NotFoundError],
      [GrpcStatus.RESOURCE_EXHAUSTED, "TOKEN_LIMIT_REACHED", TokenLimitReachedError, ResourceExhaustedError],
      [GrpcStatus.RESOURCE_EXHAUSTED, "QUEUE_LIMIT_REACHED", QueueLimitReachedError, ResourceExhaustedError],
      [GrpcStatus.NOT_FOUND, "SCHEDULE_NOT_FOUND", ScheduleNotFoundError, NotFoundError],
      [GrpcStatus.ALREADY_EXISTS, "SCHEDULE_EXISTS", ScheduleExistsError, AlreadyExistsError],
      [GrpcStatus.RESOURCE_EXHAUSTED, "SCHEDULE_LIMIT_REACHED", ScheduleLimitReachedError, ResourceExhaustedError],
      [GrpcStatus.NOT_FOUND, "WEBHOOK_NOT_FOUND", WebhookNotFoundError, NotFoundError],
      [GrpcStatus.RESOURCE_EXHAUSTED, "WEBHOOK_LIMIT_REACHED", WebhookLimitReachedError, ResourceExhaustedError],
    ];
    for (const [code, reason, type, base] of cases) {
      const error = fromServiceError(serviceError(code, "x", [errorInfo(reason)])) as JobQueueError;
      assert.ok(error instanceof type, reason);
      assert.ok(error instanceof base, reason);
      assert.equal(error.name, type.name);
      assert.equal(error.reason, reason);
      assert.equal(error.code, code);
      assert.equal(error.retryable, base === UnavailableError, reason);
    }
  });

  test("a durability refusal is not a wrong state", () => {
    const error = fromServiceError(
      serviceError(GrpcStatus.FAILED_PRECONDITION, "appendonly is off", [errorInfo("DURABILITY_UNAVAILABLE")]),
    );
    assert.ok(error instanceof DurabilityUnavailableError);
    assert.ok(!(error instanceof WrongStateError));
  });

  test("a reason from another domain, or newer than this library, leaves the class to the code", () => {
    const foreign = fromServiceError(serviceError(GrpcStatus.FAILED_PRECONDITION, "x", [errorInfo("LEASE_LOST", "example.com")]));
    assert.equal((foreign as JobQueueError).constructor, FailedPreconditionError);
    const newer = fromServiceError(serviceError(GrpcStatus.UNAVAILABLE, "x", [errorInfo("STORE_ON_FIRE")]));
    assert.equal((newer as JobQueueError).constructor, UnavailableError);
    assert.equal((newer as JobQueueError).reason, "STORE_ON_FIRE", "the reason is still told");
  });

  test("reasons are parsed by value name only", () => {
    assert.equal(errorReason("LEASE_LOST"), ErrorReason.LEASE_LOST);
    assert.equal(errorReason("3"), undefined); // the enum's reverse mapping
    assert.equal(errorReason("ERROR_REASON_UNSPECIFIED"), undefined);
    assert.equal(errorReason("toString"), undefined);
    assert.equal(errorReason("lease_lost"), undefined);
  });

  test("without details the code decides", () => {
    const error = fromServiceError(serviceError(GrpcStatus.UNAVAILABLE, "No connection established", []));
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.reason, "UNAVAILABLE");
    assert.equal(error.retryable, true);
    assert.equal(error.message, "No connection established");
    const precondition = fromServiceError(serviceError(GrpcStatus.FAILED_PRECONDITION, "no", []));
    assert.equal((precondition as JobQueueError).constructor, FailedPreconditionError);
    const internal = fromServiceError(serviceError(GrpcStatus.INTERNAL, "Failed to parse server response", []));
    assert.equal((internal as JobQueueError).constructor, InternalError);
    const unauthenticated = fromServiceError(serviceError(GrpcStatus.UNAUTHENTICATED, "no token", []));
    assert.equal((unauthenticated as JobQueueError).constructor, UnauthenticatedError);
    assert.equal((unauthenticated as JobQueueError).reason, "UNAUTHENTICATED");
    const exists = fromServiceError(serviceError(GrpcStatus.ALREADY_EXISTS, "taken", []));
    assert.equal((exists as JobQueueError).constructor, AlreadyExistsError);
    assert.equal((exists as JobQueueError).reason, "ALREADY_EXISTS");
    const denied = fromServiceError(serviceError(GrpcStatus.PERMISSION_DENIED, "proxy says no", []));
    assert.equal((denied as JobQueueError).constructor, PermissionDeniedError);
    const unknown = fromServiceError(serviceError(GrpcStatus.DATA_LOSS, "boom", []));
    assert.ok(unknown instanceof JobQueueError);
    assert.equal(unknown.constructor, JobQueueError);
    assert.equal(unknown.code, GrpcStatus.DATA_LOSS);
  });

  test("a trailer that does not decode falls back to the code", () => {
    const error = serviceError(GrpcStatus.NOT_FOUND, "gone", []);
    error.metadata.set("grpc-status-details-bin", Buffer.from([0xff, 0xff, 0xff]));
    assert.ok(fromServiceError(error) instanceof NotFoundError);
  });

  test("anything that is not a gRPC error is returned unchanged", () => {
    const plain = new TypeError("no");
    assert.equal(fromServiceError(plain), plain);
  });
});

describe("errors from a confirmation's status", () => {
  test("OK is no error", () => {
    assert.equal(fromStatus({ code: 0, message: "", details: [] }), undefined);
    assert.equal(fromStatus(undefined), undefined);
  });

  test("a refused ack is LeaseLostError", () => {
    const error = fromStatus({ code: GrpcStatus.FAILED_PRECONDITION, message: "lease lost", details: [errorInfo("LEASE_LOST")] });
    assert.ok(error instanceof LeaseLostError);
    assert.equal(error.message, "lease lost");
  });

  test("a malformed entry names its field", () => {
    const error = fromStatus({
      code: GrpcStatus.INVALID_ARGUMENT,
      message: "acks[0].lease_token: is required",
      details: [errorInfo("INVALID_ARGUMENT"), badRequest("acks[0].lease_token")],
    });
    assert.ok(error instanceof InvalidArgumentError);
    assert.equal(error.field, "acks[0].lease_token");
  });
});

describe("a worker's answer to a refused ack or fail", () => {
  test("UNAVAILABLE keeps the job held: the same ack or fail is sent again", () => {
    for (const kind of ["ack", "fail"] as const) {
      assert.deepEqual(refusal(kind, refused(GrpcStatus.UNAVAILABLE, "STORE_UNAVAILABLE")), { action: "resend" });
      const deadline = fromStatus({ code: GrpcStatus.DEADLINE_EXCEEDED, message: "", details: [] }) as JobQueueError;
      assert.deepEqual(refusal(kind, deadline), { action: "resend" });
    }
  });

  test("FSYNC_NOT_CONFIRMED counts as settled: the write stands, a resend could not change it", () => {
    for (const kind of ["ack", "fail"] as const) {
      assert.deepEqual(refusal(kind, refused(GrpcStatus.UNAVAILABLE, "FSYNC_NOT_CONFIRMED")), { action: "settled" });
    }
  });

  test("REPLICATION_NOT_CONFIRMED counts as settled too: the write stands on the primary", () => {
    for (const kind of ["ack", "fail"] as const) {
      assert.deepEqual(refusal(kind, refused(GrpcStatus.UNAVAILABLE, "REPLICATION_NOT_CONFIRMED")), { action: "settled" });
    }
  });

  test("an ack the store cannot make durable fails the attempt, retryably, with the reason", () => {
    const next = refusal("ack", refused(GrpcStatus.FAILED_PRECONDITION, "DURABILITY_UNAVAILABLE"));
    assert.equal(next.action, "fail");
    assert.ok(next.action === "fail" && !next.nonRetryable && next.message.includes("durability_unavailable"));
  });

  test("an ack refused as invalid fails the job for good", () => {
    const next = refusal("ack", refused(GrpcStatus.INVALID_ARGUMENT, "INVALID_ARGUMENT"));
    assert.ok(next.action === "fail" && next.nonRetryable);
  });

  test("a lost lease or an unknown job is dropped", () => {
    for (const kind of ["ack", "fail"] as const) {
      assert.deepEqual(refusal(kind, refused(GrpcStatus.FAILED_PRECONDITION, "LEASE_LOST")), { action: "drop" });
      assert.deepEqual(refusal(kind, refused(GrpcStatus.NOT_FOUND, "JOB_NOT_FOUND")), { action: "drop" });
    }
  });
});
