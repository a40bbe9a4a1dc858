import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";

import {
  InvalidArgumentError,
  JobQueueError,
  LeaseLostError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
  WrongStateError,
  fromServiceError,
  fromStatus,
} from "../errors.js";
import type { Any } from "../gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo } from "../gen/google/rpc/error_details.js";
import { Status } from "../gen/google/rpc/status.js";

function errorInfo(reason: string): Any {
  return {
    typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
    value: Buffer.from(ErrorInfo.encode({ reason, domain: "jobqueue.dev", metadata: {} }).finish()),
  };
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

  test("each server reason maps to its class", () => {
    const cases: [GrpcStatus, string, new (...args: never[]) => JobQueueError][] = [
      [GrpcStatus.NOT_FOUND, "JOB_NOT_FOUND", NotFoundError],
      [GrpcStatus.UNAVAILABLE, "STORE_UNAVAILABLE", UnavailableError],
      [GrpcStatus.UNAVAILABLE, "SERVER_SHUTTING_DOWN", UnavailableError],
      [GrpcStatus.RESOURCE_EXHAUSTED, "STORE_FULL", ResourceExhaustedError],
    ];
    for (const [code, reason, type] of cases) {
      const error = fromServiceError(serviceError(code, "x", [errorInfo(reason)]));
      assert.ok(error instanceof type, reason);
      assert.equal((error as JobQueueError).reason, reason);
    }
  });

  test("without details the code decides", () => {
    const error = fromServiceError(serviceError(GrpcStatus.UNAVAILABLE, "No connection established", []));
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.reason, "UNAVAILABLE");
    assert.equal(error.retryable, true);
    assert.equal(error.message, "No connection established");
    const unknown = fromServiceError(serviceError(GrpcStatus.INTERNAL, "boom", []));
    assert.ok(unknown instanceof JobQueueError);
    assert.equal(unknown.constructor, JobQueueError);
    assert.equal(unknown.code, GrpcStatus.INTERNAL);
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
