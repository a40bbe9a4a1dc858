// Running jobs against the real `jobq serve`: stops (Client.cancel of an active job, the
// execution timeout), the start deadline, progress and log lines, and WatchJob, as the
// contract (proto/jobqueue/v1/job_queue_service.proto) says.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Client,
  JobStoppedError,
  NotFoundError,
  Worker,
  consoleLogger,
  type Handler,
  type Job,
  type WorkerOptions,
} from "../index.js";
import { whenAborted } from "../timing.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { gate, uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping running-job integration tests: ${skip}`);

const quiet = consoleLogger("error");

describe("running jobs against a real server", { skip, timeout: 120_000 }, () => {
  let server: TestServer;
  let client: Client;

  before(async () => {
    server = await TestServer.start();
    client = await Client.connect(server.target);
  });

  after(async () => {
    await client?.close();
    await server?.stop();
  });

  /** Runs a worker for `queue` until the returned stop function is awaited. */
  function start(queue: string, handler: Handler, options: WorkerOptions = {}): { worker: Worker; stop: () => Promise<void> } {
    const worker = new Worker(client, { queues: [queue], gracePeriodMs: 5_000, logger: quiet, ...options }).handle(queue, handler);
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    return {
      worker,
      stop: async () => {
        controller.abort();
        await running;
      },
    };
  }

  test("cancelling an active job stops its handler; the worker goes on to the next job", async () => {
    const queue = uniqueQueue();
    const started = gate();
    let reason: unknown;
    const { worker, stop } = start(
      queue,
      async (payload, ctx) => {
        if (payload["wait"] !== true) return { next: true };
        started.open();
        await whenAborted(ctx.signal).promise;
        reason = ctx.signal.reason;
        return { ignored: true };
      },
      { concurrency: 1 },
    );
    try {
      const first = await client.enqueue(queue, { wait: true });
      await started.promise;
      // Queued behind the running job: the one slot is taken.
      const next = await client.enqueue(queue, {});
      await client.cancel(first.jobId);
      await waitUntil(() => reason !== undefined, "the handler's signal to abort");
      assert.ok(reason instanceof JobStoppedError, String(reason));
      assert.equal(reason.reason, "cancelled");
      assert.equal(reason.jobId, first.jobId);
      const cancelled = await client.waitFor(first.jobId, { timeoutMs: 10_000 });
      assert.equal(cancelled.state, "cancelled");
      assert.equal(cancelled.result, undefined, "the handler's late result was not sent");
      const done = await client.waitFor(next.jobId, { timeoutMs: 10_000 });
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { next: true });
      assert.equal(worker.counters.stopped, 1);
      await waitUntil(() => worker.counters.succeeded === 1, "the next job's ack");
      assert.equal(worker.counters.rejected, 0, "nothing was settled for the stopped job");
      assert.equal((await client.getStatus(first.jobId)).state, "cancelled");
    } finally {
      await stop();
    }
  });

  test("an attempt past its executionTimeoutMs is stopped as timed_out; with one attempt the job is dead", async () => {
    const queue = uniqueQueue();
    let reason: unknown;
    const { worker, stop } = start(queue, async (_, ctx) => {
      await whenAborted(ctx.signal).promise;
      reason = ctx.signal.reason;
      throw new Error("ignored: the server failed the attempt already");
    });
    try {
      const { jobId } = await client.enqueue(queue, {}, { executionTimeoutMs: 1_000, maxAttempts: 1 });
      assert.equal((await client.getStatus(jobId)).executionTimeoutMs, 1_000);
      const job = await client.waitFor(jobId, { timeoutMs: 20_000 });
      assert.equal(job.state, "dead");
      assert.equal(job.attempts, 1);
      assert.match(job.lastError, /timed out/);
      assert.equal(job.errors.length, 1);
      assert.match(job.errors[0]?.message ?? "", /timed out/);
      await waitUntil(() => reason !== undefined, "the handler's signal to abort");
      assert.ok(reason instanceof JobStoppedError, String(reason));
      assert.equal(reason.reason, "timed_out");
      assert.equal(worker.counters.stopped, 1);
      assert.equal(worker.counters.failed, 0, "the worker sent no fail of its own");
    } finally {
      await stop();
    }
  });

  test("a job not leased before its startDeadline is cancelled", async () => {
    const queue = uniqueQueue(); // no worker
    const startDeadline = new Date(Date.now() + 1_000);
    const { jobId } = await client.enqueue(queue, {}, { startDeadline });
    assert.equal((await client.getStatus(jobId)).startDeadline?.getTime(), startDeadline.getTime());
    const job = await client.waitFor(jobId, { timeoutMs: 30_000 });
    assert.equal(job.state, "cancelled");
    assert.equal(job.attempts, 0);
    assert.match(job.lastError, /start deadline/);
  });

  test("ctx.progress and ctx.log show in getStatus while the handler runs", async () => {
    const queue = uniqueQueue();
    const finish = gate();
    const { stop } = start(queue, async (_, ctx) => {
      ctx.progress(42.5, "halfway there");
      ctx.log("first line");
      ctx.log("second line");
      await finish.promise;
      return { done: true };
    });
    try {
      const { jobId } = await client.enqueue(queue, {});
      const running = await waitUntil(
        async () => {
          const job = await client.getStatus(jobId);
          return job.progress !== undefined && job.logs.length === 2 ? job : undefined;
        },
        "the progress and both lines in getStatus",
      );
      assert.equal(running.state, "active");
      assert.equal(running.progress?.percent, 42.5);
      assert.equal(running.progress?.message, "halfway there");
      assert.ok(running.progress?.time instanceof Date);
      assert.deepEqual(
        running.logs.map((entry) => entry.line),
        ["first line", "second line"],
      );
      assert.ok(running.logs.every((entry) => entry.time instanceof Date));
      finish.open();
      const done = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { done: true });
    } finally {
      finish.open();
      await stop();
    }
  });

  test("watchJob yields the job's states through to completed and ends; waitFor returns the completed job", async () => {
    const queue = uniqueQueue();
    const { jobId } = await client.enqueue(queue, { n: 1 });
    const seen: Job[] = [];
    let ended = false;
    const watching = (async () => {
      for await (const job of client.watchJob(jobId, { timeoutMs: 30_000 })) seen.push(job);
      ended = true;
    })();
    await waitUntil(() => seen.length > 0, "the job as it is now");
    assert.equal(seen[0]?.state, "queued");
    const finish = gate();
    const { stop } = start(queue, async (payload, ctx) => {
      ctx.progress(50, "half");
      await finish.promise;
      return { got: payload["n"] };
    });
    try {
      await waitUntil(() => seen.some((job) => job.state === "active" && job.progress?.percent === 50), "the progress change");
      const waiting = client.waitFor(jobId, { timeoutMs: 10_000 });
      finish.open();
      await watching;
      assert.ok(ended);
      const states = seen.map((job) => job.state);
      assert.equal(states.at(-1), "completed", states.join(", "));
      assert.equal(states.filter((state) => state === "completed").length, 1, "nothing after the finished job");
      assert.ok(states.indexOf("active") > 0, states.join(", "));
      assert.deepEqual(seen.at(-1)?.result, { got: 1 });
      const done = await waiting;
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { got: 1 });
      // A finished job's watch sends it once and ends.
      const again: Job[] = [];
      for await (const job of client.watchJob(jobId, { timeoutMs: 10_000 })) again.push(job);
      assert.deepEqual(
        again.map((job) => job.state),
        ["completed"],
      );
    } finally {
      finish.open();
      await stop();
    }
  });

  test("watching an unknown job is NotFoundError", async () => {
    await assert.rejects(async () => {
      for await (const _ of client.watchJob(`${uniqueQueue()}:01ARZ3NDEKTSV4RRFFQ69G5FAV`)) assert.fail("no job expected");
    }, NotFoundError);
  });

  test("a schedule's executionTimeoutMs is stored with its template", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-timed`;
    try {
      const info = await client.createSchedule({ name, everyMs: 3_600_000, queue, executionTimeoutMs: 90_000 });
      assert.equal(info.executionTimeoutMs, 90_000);
      assert.equal((await client.getSchedule(name)).executionTimeoutMs, 90_000);
    } finally {
      await client.deleteSchedule(name).catch(() => undefined);
    }
  });
});
