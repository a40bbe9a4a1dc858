// EnqueueStream's bookkeeping without a server, on a stand-in for grpc-js's duplex stream:
// answers matched by sequence, a refusal failing only its batch, an answer out of order or
// UNIMPLEMENTED ending the stream, and a deadline that fails its batch while the stream goes on.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, mock, test } from "node:test";

import { Metadata, status as GrpcStatus } from "@grpc/grpc-js";

import { EnqueueStream, StreamUnsupportedError, type EnqueueDuplex } from "../enqueue-stream.js";
import { DeadlineExceededError, InvalidArgumentError, UnavailableError } from "../errors.js";
import { Any } from "../gen/google/protobuf/any.js";
import { BadRequest } from "../gen/google/rpc/error_details.js";
import { EnqueueStreamRequest } from "../gen/jobqueue/v1/job_queue_service.js";

/** What the stream uses of a grpc-js ClientDuplexStream; the test plays the server. */
class FakeCall extends EventEmitter {
  readonly written: EnqueueStreamRequest[] = [];
  readableEnded = false;
  halfClosed = false;

  write(body: Buffer): boolean {
    this.written.push(EnqueueStreamRequest.decode(body));
    return true;
  }

  end(): void {
    this.halfClosed = true;
  }

  cancel(): void {
    this.finish(GrpcStatus.CANCELLED, "Cancelled on client");
  }

  answer(sequence: number, jobs: number): void {
    const responses = Array.from({ length: jobs }, (_, i) => ({ jobId: `q:${sequence}-${i}`, duplicate: false }));
    this.emit("data", { sequence, responses, error: undefined });
  }

  refuse(sequence: number, field: string): void {
    const detail = Buffer.from(BadRequest.encode(BadRequest.fromPartial({ fieldViolations: [{ field, description: "bad" }] })).finish());
    const error = {
      code: GrpcStatus.INVALID_ARGUMENT,
      message: `${field}: bad`,
      details: [Any.fromPartial({ typeUrl: "type.googleapis.com/google.rpc.BadRequest", value: detail })],
    };
    this.emit("data", { sequence, responses: [], error });
  }

  /** The call's status, as grpc-js reports it: "error" first unless OK, then "status", then "end". */
  finish(code: GrpcStatus, details = ""): void {
    if (code !== GrpcStatus.OK) {
      this.emit("error", Object.assign(new Error(`${code} ${details}`), { code, details, metadata: new Metadata() }));
    }
    this.emit("status", { code, details, metadata: new Metadata() });
    this.readableEnded = true;
    this.emit("end");
  }
}

const job = new Uint8Array([0x0a, 0x01, 0x71]); // an EnqueueRequest for queue "q"
const LATER = (): number => Date.now() + 60_000;

function setUp() {
  const calls: FakeCall[] = [];
  const stream = new EnqueueStream(
    () => {
      const call = new FakeCall();
      calls.push(call);
      return call as unknown as EnqueueDuplex;
    },
    () => 1_000,
  );
  return { stream, calls };
}

describe("EnqueueStream", () => {
  test("numbers its messages and answers each batch by its sequence; a refusal fails only its batch", async () => {
    const { stream, calls } = setUp();
    const first = stream.send([job, job], LATER());
    const second = stream.send([job], LATER());
    const third = stream.send([job], LATER());
    assert.equal(calls.length, 1, "one stream for every batch");
    const call = calls[0] as FakeCall;
    assert.deepEqual(call.written.map((request) => [request.sequence, request.requests.length]), [[1, 2], [2, 1], [3, 1]]);
    call.answer(1, 2);
    call.refuse(2, "requests[0].queue");
    call.answer(3, 1);
    assert.deepEqual((await first).map((r) => r.jobId), ["q:1-0", "q:1-1"]);
    await assert.rejects(second, (error: unknown) => error instanceof InvalidArgumentError && error.field === "requests[0].queue");
    assert.equal((await third)[0]?.jobId, "q:3-0");
  });

  test("an answer out of order ends the stream: every batch unanswered fails, the next opens a new one", async () => {
    const { stream, calls } = setUp();
    const first = stream.send([job], LATER());
    const second = stream.send([job], LATER());
    (calls[0] as FakeCall).answer(2, 1);
    for (const batch of [first, second]) {
      await assert.rejects(batch, (error: unknown) => error instanceof UnavailableError && /answered request 2, expected 1/.test(error.message));
    }
    const third = stream.send([job], LATER());
    assert.equal(calls.length, 2);
    const next = calls[1] as FakeCall;
    next.answer(next.written[0]?.sequence ?? 0, 1);
    assert.equal((await third).length, 1);
  });

  test("a stream that breaks fails its unanswered batches with its error", async () => {
    const { stream, calls } = setUp();
    const answered = stream.send([job], LATER());
    const unanswered = stream.send([job], LATER());
    const call = calls[0] as FakeCall;
    call.answer(1, 1);
    call.finish(GrpcStatus.UNAVAILABLE, "connection reset");
    assert.equal((await answered).length, 1);
    await assert.rejects(unanswered, (error: unknown) => error instanceof UnavailableError && error.code === GrpcStatus.UNAVAILABLE);
    assert.equal(stream.unsupported, false);
  });

  test("UNIMPLEMENTED is remembered: its batches and every later one get StreamUnsupportedError, unsent", async () => {
    const { stream, calls } = setUp();
    const sent = stream.send([job], LATER());
    (calls[0] as FakeCall).finish(GrpcStatus.UNIMPLEMENTED, "Method not found");
    await assert.rejects(sent, StreamUnsupportedError);
    assert.equal(stream.unsupported, true);
    await assert.rejects(stream.send([job], LATER()), StreamUnsupportedError);
    assert.equal(calls.length, 1, "no stream is opened again");
  });

  test("close half-closes the stream and waits for the server to end it", async () => {
    const { stream, calls } = setUp();
    const sent = stream.send([job], LATER());
    const call = calls[0] as FakeCall;
    call.answer(1, 1);
    await sent;
    let closed = false;
    const closing = stream.close().then(() => (closed = true));
    assert.equal(call.halfClosed, true);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, "it waits for the server's status");
    call.finish(GrpcStatus.OK);
    await closing;
  });

  describe("with a deadline", () => {
    beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "Date"] }));
    afterEach(() => mock.timers.reset());

    test("a batch unanswered at its deadline fails with DeadlineExceededError; later answers still match", async () => {
      const { stream, calls } = setUp();
      const late = stream.send([job], Date.now() + 200);
      const next = stream.send([job], LATER());
      mock.timers.tick(200);
      await assert.rejects(late, (error: unknown) => error instanceof DeadlineExceededError && /may be enqueued/.test(error.message));
      const call = calls[0] as FakeCall;
      call.answer(1, 1); // the late batch's answer: dropped, but it keeps the order
      call.answer(2, 1);
      assert.equal((await next)[0]?.jobId, "q:2-0");
    });

    test("a stream idle for a second, every batch answered, is ended; the next batch opens a new one", async () => {
      const { stream, calls } = setUp();
      const sent = stream.send([job], LATER());
      const call = calls[0] as FakeCall;
      mock.timers.tick(1_000);
      assert.equal(call.halfClosed, false, "not while a batch is unanswered");
      call.answer(1, 1);
      await sent;
      mock.timers.tick(1_000);
      assert.equal(call.halfClosed, true);
      call.finish(GrpcStatus.OK);
      const again = stream.send([job], LATER());
      assert.equal(calls.length, 2);
      (calls[1] as FakeCall).answer(2, 1);
      assert.equal((await again).length, 1);
    });
  });
});
