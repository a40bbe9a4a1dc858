// The worker runtime against a scripted Lease stream (no jobq server): JobStops, the window
// while a stopped handler has not returned, and progress reports ahead of the ack.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import { JobStoppedError, Worker, consoleLogger, type Handler, type JobContext } from "../index.js";
import { StopReason } from "../gen/jobqueue/v1/job_queue_service.js";
import { whenAborted } from "../timing.js";
import { FakeServer, leased, response } from "./helpers/fake-server.js";
import { gate, waitUntil } from "./helpers/wait.js";

const quiet = consoleLogger("error");

describe("JobStop in the worker runtime (scripted stream)", { timeout: 60_000 }, () => {
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

  test("a stop aborts the handler's signal with a JobStoppedError; nothing is settled; the slot waits for the handler", async () => {
    const started = gate();
    const release = gate();
    let seen: JobContext | undefined;
    const worker = run(async (_, ctx) => {
      seen = ctx;
      started.open();
      await whenAborted(ctx.signal).promise;
      ctx.progress(99, "after the stop"); // ignored: the lease is gone
      ctx.log("after the stop");
      await release.promise; // still running after the stop
      return { ignored: true };
    });
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "t1")] }));
    await started.promise;
    stream.write(response({ stops: [{ jobId: "q:1", leaseToken: "t1", reason: StopReason.STOP_REASON_CANCELLED }] }));
    await waitUntil(() => seen?.signal.aborted, "the handler's signal to abort");
    const reason: unknown = seen?.signal.reason;
    assert.ok(reason instanceof JobStoppedError, String(reason));
    assert.equal(reason.reason, "cancelled");
    assert.equal(reason.jobId, "q:1");
    assert.equal(worker.counters.stopped, 1);
    await waitUntil(() => fake.windows().at(-1) === 0, "a window without the stopped handler's slot");
    assert.equal(worker.running, 1, "the handler still runs");
    release.open();
    await waitUntil(() => fake.windows().length === 3 && fake.windows().at(-1) === 1, "the slot back once the handler returned");
    assert.deepEqual(fake.windows(), [1, 0, 1]);
    assert.deepEqual(fake.settled(), [], "no ack or fail for a stopped job");
    assert.deepEqual(
      fake.received.flatMap((request) => request.progress),
      [],
      "reports made after the stop are not sent",
    );
    stop.abort();
    await running;
    assert.deepEqual(fake.settled(), [], "not at the drain either");
    assert.equal(worker.counters.abandoned, 0);
  });

  test("a job sent into a stopped handler's slot waits for it; a timeout stop says timed_out", async () => {
    const events: string[] = [];
    const release = gate();
    const firstStarted = gate();
    let reason: unknown;
    run(async (payload, ctx) => {
      events.push(`start ${ctx.jobId}`);
      if (ctx.jobId === "q:1") {
        firstStarted.open();
        await whenAborted(ctx.signal).promise;
        reason = ctx.signal.reason;
        events.push(`stopped ${ctx.jobId}`);
        await release.promise;
        events.push(`end ${ctx.jobId}`);
        throw new Error("ignored too");
      }
      events.push(`end ${ctx.jobId}`);
      return { payload };
    });
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "t1")] }));
    await firstStarted.promise;
    // The server counts the slot free at once and may fill it in the same message.
    stream.write(
      response({
        jobs: [leased("q:2", "t2")],
        stops: [{ jobId: "q:1", leaseToken: "t1", reason: StopReason.STOP_REASON_TIMED_OUT }],
      }),
    );
    await waitUntil(() => events.includes("stopped q:1"), "the stop");
    assert.ok(reason instanceof JobStoppedError);
    assert.equal(reason.reason, "timed_out");
    assert.ok(!events.includes("start q:2"), "the second job waits while the stopped handler runs");
    release.open();
    await waitUntil(() => fake.settled().includes("q:2"), "the second job's ack");
    assert.deepEqual(events, ["start q:1", "stopped q:1", "end q:1", "start q:2", "end q:2"]);
    assert.deepEqual(fake.settled(), ["q:2"]);
    const acks = fake.received.flatMap((request) => request.acks);
    assert.deepEqual(acks.map((ack) => ack.leaseToken), ["t2"]);
  });

  test("a stop for a job waiting for a slot drops it unstarted", async () => {
    const release = gate();
    const started: string[] = [];
    const worker = run(async (_, ctx) => {
      started.push(ctx.jobId);
      if (ctx.jobId === "q:1") {
        await whenAborted(ctx.signal).promise;
        await release.promise;
      }
      return {};
    });
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "t1")] }));
    await waitUntil(() => started.length === 1, "the first job");
    stream.write(
      response({
        jobs: [leased("q:2", "t2")],
        stops: [{ jobId: "q:1", leaseToken: "t1", reason: StopReason.STOP_REASON_CANCELLED }],
      }),
    );
    stream.write(response({ stops: [{ jobId: "q:2", leaseToken: "t2", reason: StopReason.STOP_REASON_CANCELLED }] }));
    await waitUntil(() => worker.counters.stopped === 2, "both stops");
    release.open();
    await waitUntil(() => fake.windows().at(-1) === 1, "the slot back");
    stream.write(response({ jobs: [leased("q:3", "t3")] }));
    await waitUntil(() => fake.settled().includes("q:3"), "the next job's ack");
    assert.deepEqual(started, ["q:1", "q:3"], "the stopped waiting job never started");
    assert.deepEqual(fake.settled(), ["q:3"]);
  });

  test("a job retried after a timeout runs again here while its stopped attempt has not returned", async () => {
    const release = gate();
    const attempts: string[] = [];
    run(async (_, ctx) => {
      attempts.push(ctx.leaseToken);
      if (ctx.leaseToken === "first") {
        await whenAborted(ctx.signal).promise;
        await release.promise;
      }
      return { token: ctx.leaseToken };
    }, 2);
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "first")] }));
    await waitUntil(() => attempts.length === 1, "the first attempt");
    stream.write(response({ stops: [{ jobId: "q:1", leaseToken: "first", reason: StopReason.STOP_REASON_TIMED_OUT }] }));
    stream.write(response({ jobs: [leased("q:1", "second")] }));
    await waitUntil(() => fake.settled().includes("q:1"), "the second attempt's ack");
    assert.deepEqual(attempts, ["first", "second"]);
    release.open();
    await waitUntil(() => fake.windows().at(-1) === 2, "the first attempt's slot back");
    const acks = fake.received.flatMap((request) => request.acks);
    assert.deepEqual(acks.map((ack) => ack.leaseToken), ["second"]);
  });

  test("a stop with another lease token is not this job's", async () => {
    const finish = gate();
    const contexts = new Map<string, JobContext>();
    const worker = run(async (_, ctx) => {
      contexts.set(ctx.jobId, ctx);
      if (ctx.jobId === "q:1") await finish.promise;
      return { done: true };
    }, 2);
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "t1")] }));
    await waitUntil(() => contexts.has("q:1"), "the job");
    stream.write(response({ stops: [{ jobId: "q:1", leaseToken: "an older lease", reason: StopReason.STOP_REASON_CANCELLED }] }));
    // The stream is ordered: once the next job runs, the stop was handled.
    stream.write(response({ jobs: [leased("q:2", "t2")] }));
    await waitUntil(() => contexts.has("q:2"), "the next job");
    assert.equal(contexts.get("q:1")?.signal.aborted, false);
    assert.equal(worker.counters.stopped, 0);
    finish.open();
    await waitUntil(() => fake.settled().includes("q:1"), "the ack");
  });

  test("a job's progress and log lines go out with its lease token, before its ack", async () => {
    run(async (_, ctx) => {
      ctx.progress(50, "half");
      ctx.log("first line");
      ctx.progress(90, "nearly");
      ctx.log("second line");
      return { ok: true };
    });
    const stream = await fake.subscribed();
    stream.write(response({ jobs: [leased("q:1", "t1")] }));
    await waitUntil(() => fake.settled().includes("q:1"), "the ack");
    const withProgress = fake.received.findIndex((request) => request.progress.length > 0);
    const withAck = fake.received.findIndex((request) => request.acks.length > 0);
    assert.ok(withProgress >= 0 && withProgress < withAck, `progress in message ${withProgress}, ack in ${withAck}`);
    assert.deepEqual(fake.received[withProgress]?.progress, [
      { jobId: "q:1", leaseToken: "t1", percent: 90, message: "nearly", logs: ["first line", "second line"] },
    ]);
  });
});
