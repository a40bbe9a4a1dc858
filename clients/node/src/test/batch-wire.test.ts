import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { blame, frameBatch, frameStreamRequest, framedSize } from "../batch-wire.js";
import { enqueueRequest } from "../convert.js";
import { InvalidArgumentError, NotFoundError, StoreUnavailableError } from "../errors.js";
import { Durability } from "../gen/jobqueue/v1/job.js";
import { EnqueueBatchRequest, EnqueueRequest, EnqueueStreamRequest } from "../gen/jobqueue/v1/job_queue_service.js";

describe("frameBatch", () => {
  test("is the EnqueueBatchRequest of the requests, whatever their length's varint size", () => {
    // 1-, 2- and 3-byte lengths (under 128, under 16,384, above).
    const requests = [
      enqueueRequest({ queue: "q" }),
      enqueueRequest({ queue: "q", payload: { text: "x".repeat(500) }, durability: "fsynced" }),
      enqueueRequest({ queue: "q", payload: new Uint8Array(20_000).fill(7), priority: "high", delayMs: 1_500 }),
    ];
    const encoded = requests.map((request) => EnqueueRequest.encode(request).finish());
    const body = frameBatch(encoded);
    assert.equal(body.length, encoded.reduce((sum, request) => sum + framedSize(request), 0));
    const decoded = EnqueueBatchRequest.decode(body);
    assert.equal(decoded.durability, Durability.DURABILITY_UNSPECIFIED);
    assert.deepEqual(decoded.requests, requests.map((request) => EnqueueRequest.decode(EnqueueRequest.encode(request).finish())));
    assert.equal(frameBatch([]).length, 0);
  });
});

describe("frameStreamRequest", () => {
  test("is the EnqueueStreamRequest of the sequence and requests, for sequences of any varint size", () => {
    const requests = [enqueueRequest({ queue: "q" }), enqueueRequest({ queue: "q", payload: { text: "x".repeat(300) } })];
    const encoded = requests.map((request) => EnqueueRequest.encode(request).finish());
    const expected = requests.map((request) => EnqueueRequest.decode(EnqueueRequest.encode(request).finish()));
    for (const sequence of [1, 127, 128, 300, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const decoded = EnqueueStreamRequest.decode(frameStreamRequest(sequence, encoded));
      assert.equal(decoded.sequence, sequence);
      assert.equal(decoded.durability, Durability.DURABILITY_UNSPECIFIED);
      assert.deepEqual(decoded.requests, expected);
    }
  });
});

describe("blame", () => {
  const refusal = (field: string, message = `${field}: is wrong`) => new InvalidArgumentError(message, { field });

  test("names the job and renames its field and message as for a single enqueue", () => {
    const found = blame(refusal("requests[2].metadata.tenant"), 3);
    assert.equal(found?.index, 2);
    assert.ok(found.error instanceof InvalidArgumentError);
    assert.equal(found.error.field, "metadata.tenant");
    assert.equal(found.error.message, "metadata.tenant: is wrong");
    assert.equal(found.error.reason, "INVALID_ARGUMENT");
  });

  test("an unknown dependency (NOT_FOUND naming depends_on) names the job and stays a NotFoundError", () => {
    const error = new NotFoundError("requests[1].depends_on[0]: no job q:x", { field: "requests[1].depends_on[0]" });
    const found = blame(error, 2);
    assert.equal(found?.index, 1);
    assert.ok(found.error instanceof NotFoundError);
    assert.equal(found.error.field, "depends_on[0]");
    assert.equal(found.error.message, "depends_on[0]: no job q:x");
    assert.equal(found.error.reason, "JOB_NOT_FOUND");
    assert.equal(blame(new NotFoundError("no such job"), 2), undefined, "without a field: the whole batch's");
    assert.equal(blame(new NotFoundError("gone", { field: "requests[1].queue" }), 2), undefined, "about no dependency");
  });

  test("a violation of a whole request names the job without a field", () => {
    const found = blame(refusal("requests[0]"), 1);
    assert.equal(found?.index, 0);
    assert.equal(found.error.field, undefined);
  });

  test("a refusal of the whole batch, or naming no job of it, blames none", () => {
    assert.equal(blame(refusal("requests", "requests: must hold at most 10 requests"), 20), undefined);
    assert.equal(blame(refusal("durability"), 2), undefined);
    assert.equal(blame(refusal("requests[5].queue"), 5), undefined, "past the end of the batch");
    assert.equal(blame(refusal("requests[99999999999].queue"), 5), undefined, "too many digits");
    assert.equal(blame(refusal("requests[1]x"), 5), undefined);
    assert.equal(blame(new StoreUnavailableError("down"), 5), undefined);
    assert.equal(blame(new Error("requests[0].queue"), 5), undefined);
  });
});
