// The worker runtime against a scripted Lease stream (no jobq server): every ack and fail
// that follows a handler's run carries how long the handler ran (handler_duration, for the
// server's processing-time histogram, docs/monitoring.md); one no handler ran for does not.

import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { afterEach, beforeEach, describe, test } from "node:test";

import { status as GrpcStatus } from "@grpc/grpc-js";

import { NonRetryableError, Worker, consoleLogger, type Handler } from "../index.js";
import { handlerDuration } from "../execution.js";
import type { Duration } from "../gen/google/protobuf/duration.js";
import { ErrorInfo } from "../gen/google/rpc/error_details.js";
import { ConfirmationKind, type AckRequest, type FailRequest } from "../gen/jobqueue/v1/job_queue_service.js";
import { sleep } from "../timing.js";
import { FakeServer, leased, response } from "./helpers/fake-server.js";
import { waitUntil } from "./helpers/wait.js";

const quiet = consoleLogger("error");

/** How long each handler runs, at least; and a bound only a broken measure reaches. */
const NAP_MS = 50;
const BOUND_MS = 5_000;

/** Sleeps at least NAP_MS on the monotonic clock (a timer may fire a millisecond early). */
async function nap(): Promise<void> {
  const began = performance.now();
  while (performance.now() - began < NAP_MS) await sleep(NAP_MS - (performance.now() - began) + 1);
}

function ms(duration: Duration | undefined): number | undefined {
  return duration === undefined ? undefined : duration.seconds * 1000 + duration.nanos / 1e6;
}

function assertRanAboutNap(duration: Duration | undefined, what: string): void {
  const ran = ms(duration);
  assert.ok(ran !== undefined, `the ${what} carries no handlerDuration`);
  assert.ok(ran >= NAP_MS && ran < BOUND_MS, `the ${what} says the handler ran ${ran} ms; it slept ${NAP_MS} ms`);
}

describe("handler run time on acks and fails (scripted stream)", { timeout: 60_000 }, () => {
  let fake: FakeServer;
  let stop: AbortController;
  let running: Promise<void> | undefined;

  beforeEach(async () => {
    fake = await FakeServer.start();
    stop = new AbortController();
    running = undefined;
  });

  afterEach(async () => {
    stop.abort();
    await running;
    fake.stop();
  });

  function run(handler: Handler, concurrency = 1): Worker {
    const worker = new Worker(fake.target, { queues: ["q"], concurrency, gracePeriodMs: 5_000, logger: quiet }).handle("q", handler);
    running = worker.run({ signal: stop.signal });
    return worker;
  }

  function sentAck(jobId: string): AckRequest | undefined {
    return fake.received.flatMap((request) => request.acks).find((ack) => ack.jobId === jobId);
  }

  function sentFails(jobId: string): FailRequest[] {
    return fake.received.flatMap((request) => request.fails).filter((fail) => fail.jobId === jobId);
  }

  test("an ack and a fail say how long the handler ran", async () => {
    run(async (_, ctx) => {
      await nap();
      if (ctx.jobId === "q:throws") throw new Error("boom");
      if (ctx.jobId === "q:dead") throw new NonRetryableError("bad input");
      if (ctx.jobId === "q:array") return [1, 2] as unknown as Record<string, unknown>; // not an object: a fail
      return { ok: true };
    }, 4);
    const stream = await fake.subscribed();
    stream.write(
      response({ jobs: [leased("q:acks", "t1"), leased("q:throws", "t2"), leased("q:dead", "t3"), leased("q:array", "t4")] }),
    );
    await waitUntil(() => fake.settled().length === 4, "the four jobs settled");

    const ack = sentAck("q:acks");
    assert.ok(ack !== undefined, `settled: ${fake.settled().join(", ")}`);
    assertRanAboutNap(ack.handlerDuration, "ack");
    for (const jobId of ["q:throws", "q:dead", "q:array"]) {
      const [fail] = sentFails(jobId);
      assert.ok(fail !== undefined, `${jobId} was not failed`);
      assertRanAboutNap(fail.handlerDuration, `fail of ${jobId}`);
    }
    assert.equal(sentFails("q:dead")[0]?.nonRetryable, true);
  });

  test("a fail for a job no handler ran for carries no handlerDuration", async () => {
    run(async () => ({ ok: true }));
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("other:1", "t1")] })); // a queue this worker has no handler for
    const fail = await waitUntil(() => sentFails("other:1")[0], "the fail");
    assert.equal(fail.handlerDuration, undefined);
  });

  test("an ack the server refuses as invalid becomes a fail with the handler's run time", async () => {
    run(async () => {
      await nap();
      return { big: true };
    });
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "t1")] }));
    const ack = await waitUntil(() => sentAck("q:1"), "the ack");
    const info = ErrorInfo.encode({ reason: "INVALID_ARGUMENT", domain: "jobqueue.dev", metadata: {} }).finish();
    stream.write(
      response({
        confirmations: [
          {
            jobId: "q:1",
            kind: ConfirmationKind.CONFIRMATION_KIND_ACK,
            status: {
              code: GrpcStatus.INVALID_ARGUMENT,
              message: "result: too large",
              details: [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) }],
            },
            leaseExpireTime: undefined,
          },
        ],
      }),
    );
    const fail = await waitUntil(() => sentFails("q:1")[0], "the fail instead of the refused ack");
    assert.equal(fail.nonRetryable, true);
    assert.deepEqual(fail.handlerDuration, ack.handlerDuration);
    assertRanAboutNap(fail.handlerDuration, "fail");
  });

  test("handlerDuration is exact to the nanosecond and capped at the server's 7 days", () => {
    assert.deepEqual(handlerDuration(1500.000001), { seconds: 1, nanos: 500_000_001 });
    assert.deepEqual(handlerDuration(0.25), { seconds: 0, nanos: 250_000 });
    assert.deepEqual(handlerDuration(8 * 86_400_000), { seconds: 7 * 86_400, nanos: 0 });
    assert.deepEqual(handlerDuration(-1), { seconds: 0, nanos: 0 });
  });
});
