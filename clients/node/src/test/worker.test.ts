import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Client,
  InvalidArgumentError,
  NonRetryableError,
  Worker,
  consoleLogger,
  type JobContext,
  type WorkerOptions,
} from "../index.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { gate, uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping worker integration tests: ${skip}`);

const quiet = consoleLogger("error");
const fastRetries = { initialDelayMs: 10, maxDelayMs: 10, noJitter: true };

describe("Worker against a real server", { skip, timeout: 120_000 }, () => {
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

  /** Runs `worker` until the returned stop function is awaited. */
  function start(worker: Worker): { stop: () => Promise<void>; running: Promise<void> } {
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    return {
      running,
      stop: async () => {
        controller.abort();
        await running;
      },
    };
  }

  function worker(queue: string, options: WorkerOptions = {}): Worker {
    return new Worker(client, { queues: [queue], gracePeriodMs: 5_000, logger: quiet, ...options });
  }

  test("a handler's result is the job's result", async () => {
    const queue = uniqueQueue();
    const seen: JobContext[] = [];
    const w = worker(queue, { workerId: "node-test" }).handle(queue, async (payload, ctx) => {
      seen.push(ctx);
      return { echoed: payload, attempt: ctx.attempt };
    });
    const run = start(w);
    try {
      const { jobId } = await client.enqueue(queue, { n: 1, s: "ü" }, { metadata: { k: "v" } });
      const job = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { echoed: { n: 1, s: "ü" }, attempt: 1 });
      assert.equal(job.attempts, 1);
      const [ctx] = seen;
      assert.ok(ctx !== undefined);
      assert.equal(ctx.jobId, jobId);
      assert.equal(ctx.queue, queue);
      assert.equal(ctx.maxAttempts, 3);
      assert.deepEqual(ctx.metadata, { k: "v" });
      assert.equal(ctx.workerId, "node-test");
      assert.ok(ctx.deadline instanceof Date);
      assert.equal(ctx.signal.aborted, false);
      await waitUntil(() => w.counters.succeeded === 1, "the ack's confirmation");
    } finally {
      await run.stop();
    }
  });

  test("acks sent at the fsynced level complete jobs (the embedded Valkey's AOF is on)", async () => {
    const queue = uniqueQueue();
    const w = worker(queue, { ackDurability: "fsynced" }).handle(queue, async (payload) => ({ got: payload["n"] }));
    const run = start(w);
    try {
      const jobs = await client.enqueueBatch([1, 2, 3].map((n) => ({ queue, payload: { n } })));
      for (const [i, { jobId }] of jobs.entries()) {
        const job = await client.waitFor(jobId, { timeoutMs: 10_000 });
        assert.equal(job.state, "completed");
        assert.deepEqual(job.result, { got: i + 1 });
      }
      await waitUntil(() => w.counters.succeeded === 3, "three confirmed acks");
      assert.equal(w.counters.rejected, 0);
    } finally {
      await run.stop();
    }
  });

  test("an unknown ackDurability is refused when the worker is made", () => {
    assert.throws(
      () => worker(uniqueQueue(), { ackDurability: "later" as unknown as "applied" }),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === "ackDurability",
    );
  });

  test("a failing job is retried with backoff, then dead", async () => {
    const queue = uniqueQueue();
    const run = start(
      worker(queue).handle(queue, async (_, ctx) => {
        throw new Error(`boom ${ctx.attempt}`);
      }),
    );
    try {
      const { jobId } = await client.enqueue(queue, {}, { maxAttempts: 3, backoff: fastRetries });
      const job = await client.waitFor(jobId, { timeoutMs: 15_000 });
      assert.equal(job.state, "dead");
      assert.equal(job.attempts, 3);
      assert.deepEqual(job.errors.map((e) => e.attempt), [1, 2, 3]);
      assert.ok(job.errors[0]?.message.startsWith("Error: boom 1"), job.errors[0]?.message);
      assert.ok(job.lastError.startsWith("Error: boom 3"));
    } finally {
      await run.stop();
    }
  });

  test("a job that fails twice completes on the third attempt", async () => {
    const queue = uniqueQueue();
    const run = start(
      worker(queue).handle(queue, async (_, ctx) => {
        if (ctx.attempt < 3) throw new Error("not yet");
        return { ok: ctx.attempt };
      }),
    );
    try {
      const { jobId } = await client.enqueue(queue, {}, { maxAttempts: 5, backoff: fastRetries });
      const job = await client.waitFor(jobId, { timeoutMs: 15_000 });
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { ok: 3 });
      assert.equal(job.errors.length, 2);
    } finally {
      await run.stop();
    }
  });

  test("NonRetryableError makes the job dead after one attempt", async () => {
    const queue = uniqueQueue();
    const run = start(
      worker(queue).handle(queue, async () => {
        throw new NonRetryableError("bad input");
      }),
    );
    try {
      const { jobId } = await client.enqueue(queue, {}, { maxAttempts: 5 });
      const job = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(job.state, "dead");
      assert.equal(job.attempts, 1);
      assert.ok(job.lastError.startsWith("NonRetryableError: bad input"));
    } finally {
      await run.stop();
    }
  });

  test("a result that is not an object fails the job for good", async () => {
    const queue = uniqueQueue();
    const run = start(worker(queue).handle(queue, async () => [1, 2] as unknown as Record<string, unknown>));
    try {
      const { jobId } = await client.enqueue(queue, {});
      const job = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(job.state, "dead");
      assert.match(job.lastError, /must return an object or nothing/);
    } finally {
      await run.stop();
    }
  });

  test("the lease is extended while a handler outlives it", async () => {
    const queue = uniqueQueue();
    const deadlines: number[] = [];
    const run = start(
      worker(queue).handle(queue, async (_, ctx) => {
        deadlines.push(ctx.deadline.getTime());
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        deadlines.push(ctx.deadline.getTime());
        return { slept: true };
      }),
    );
    try {
      const { jobId } = await client.enqueue(queue, {}, { leaseDurationMs: 1_000 });
      const job = await client.waitFor(jobId, { timeoutMs: 15_000 });
      assert.equal(job.state, "completed");
      assert.equal(job.attempts, 1, "the lease never expired");
      assert.deepEqual(job.errors, []);
      assert.deepEqual(job.result, { slept: true });
      const [first, last] = deadlines as [number, number];
      assert.ok(last >= first + 1_500, `the deadline moved with the extends (${first} -> ${last})`);
    } finally {
      await run.stop();
    }
  });

  test("never more jobs run at once than the concurrency", async () => {
    const queue = uniqueQueue();
    const release = gate();
    let active = 0;
    let most = 0;
    const run = start(
      worker(queue, { concurrency: 3 }).handle(queue, async () => {
        active += 1;
        most = Math.max(most, active);
        await release.promise;
        active -= 1;
        return {};
      }),
    );
    try {
      const jobs = await client.enqueueBatch(Array.from({ length: 10 }, (_, i) => ({ queue, payload: { i } })));
      await waitUntil(() => active === 3, "three running handlers");
      // The server holds back the rest: it never sends past the window.
      const [stats] = await client.stats(queue);
      assert.equal(stats?.active, 3);
      assert.equal(stats?.queued, 7);
      release.open();
      for (const { jobId } of jobs) assert.equal((await client.waitFor(jobId, { timeoutMs: 10_000 })).state, "completed");
      assert.equal(most, 3);
    } finally {
      release.open();
      await run.stop();
    }
  });

  test("a paused queue's jobs wait until it is resumed; enqueues still work", async () => {
    const paused = uniqueQueue();
    const running = uniqueQueue();
    assert.equal(await client.pauseQueue(paused), true);
    assert.equal(await client.pauseQueue(paused), false, "paused already");
    const held = await client.enqueue(paused, { n: 1 });
    const [stats] = await client.stats(paused);
    assert.equal(stats?.paused, true);
    assert.equal(stats?.queued, 1);
    const handled: string[] = [];
    // The paused queue comes first in the subscription and its job was ready first: had it
    // been leasable, one slot would have run it before the other queue's job.
    const w = worker(paused, { queues: [paused, running], concurrency: 1 })
      .handle(paused, async (_, ctx) => {
        handled.push(ctx.jobId);
        return { resumed: true };
      })
      .handle(running, async (_, ctx) => {
        handled.push(ctx.jobId);
        return {};
      });
    const run = start(w);
    try {
      const other = await client.enqueue(running, {});
      assert.equal((await client.waitFor(other.jobId, { timeoutMs: 10_000 })).state, "completed");
      assert.equal((await client.getStatus(held.jobId)).state, "queued", "the paused queue's job was not leased");
      assert.deepEqual(handled, [other.jobId]);
      assert.equal(await client.resumeQueue(paused), true);
      assert.equal(await client.resumeQueue(paused), false, "not paused any more");
      const job = await client.waitFor(held.jobId, { timeoutMs: 10_000 });
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { resumed: true });
      assert.deepEqual(handled, [other.jobId, held.jobId]);
      assert.equal((await client.stats(paused))[0]?.paused, false);
    } finally {
      await run.stop();
    }
  });

  test("with maxActive 1 a worker of concurrency 2 never runs two of the queue's jobs at once", async () => {
    const queue = uniqueQueue();
    await client.setQueueLimits(queue, { maxActive: 1 });
    const started = gate();
    const release = gate();
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const run = start(
      worker(queue, { concurrency: 2 }).handle(queue, async (payload) => {
        running += 1;
        most = Math.max(most, running);
        order.push(payload["n"] as number);
        started.open();
        try {
          await release.promise;
          return {};
        } finally {
          running -= 1;
        }
      }),
    );
    try {
      const jobs = await client.enqueueBatch([{ queue, payload: { n: 1 } }, { queue, payload: { n: 2 } }]);
      await started.promise;
      // One handler runs and holds its job: the other job stays queued though a slot is free.
      const [stats] = await client.stats(queue);
      assert.equal(stats?.active, 1);
      assert.equal(stats?.queued, 1);
      assert.deepEqual(stats?.limits, {
        ratePerSecond: 0,
        burst: 0,
        maxActive: 1,
        groupRatePerSecond: 0,
        groupBurst: 0,
        groupMaxActive: 0,
      });
      assert.equal(running, 1);
      release.open();
      for (const { jobId } of jobs) assert.equal((await client.waitFor(jobId, { timeoutMs: 10_000 })).state, "completed");
      assert.equal(most, 1, "never two handlers at once");
      assert.deepEqual(order.sort(), [1, 2]);
    } finally {
      release.open();
      await run.stop();
      await client.setQueueLimits(queue, {});
    }
  });

  test("a graceful stop lets the running job finish and takes no new one", async () => {
    const queue = uniqueQueue();
    const started = gate();
    const finish = gate();
    const w = worker(queue, { concurrency: 1 }).handle(queue, async (_, ctx) => {
      started.open();
      await finish.promise;
      return { aborted: ctx.signal.aborted };
    });
    const controller = new AbortController();
    const running = w.run({ signal: controller.signal });
    const { jobId } = await client.enqueue(queue, {});
    await started.promise;
    controller.abort();
    const second = await client.enqueue(queue, {});
    finish.open();
    await running;
    const job = await client.getStatus(jobId);
    assert.equal(job.state, "completed");
    assert.deepEqual(job.result, { aborted: false });
    const next = await client.getStatus(second.jobId);
    assert.equal(next.state, "queued", "the job enqueued during the stop was left for another worker");
  });

  test("past the grace period a handler's signal is aborted and its job goes back", async () => {
    const queue = uniqueQueue();
    const started = gate();
    let signal: AbortSignal | undefined;
    const w = worker(queue, { gracePeriodMs: 100 }).handle(queue, async (_, ctx) => {
      signal = ctx.signal;
      started.open();
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      return { late: true };
    });
    const controller = new AbortController();
    const running = w.run({ signal: controller.signal });
    const { jobId } = await client.enqueue(queue, {});
    await started.promise;
    controller.abort();
    await running;
    assert.equal(signal?.aborted, true);
    const job = await waitUntil(async () => {
      const current = await client.getStatus(jobId);
      return current.state === "queued" ? current : undefined;
    }, "the job to be released");
    assert.equal(job.attempts, 1);
    assert.equal(job.result, undefined);
    await waitUntil(() => w.counters.abandoned === 1, "the late result to be dropped");
  });

  test("a subscription the server refuses rejects run()", async () => {
    const queue = uniqueQueue();
    const w = worker(queue, { concurrency: 100_000 }).handle(queue, async () => ({}));
    await assert.rejects(w.run(), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "subscribe.max_in_flight");
      return true;
    });
  });

  test("run() refuses queues without a handler", async () => {
    const w = worker(uniqueQueue()).handle(uniqueQueue(), async () => ({}));
    await assert.rejects(w.run(), /no handler for queue/);
  });
});

describe("Worker reconnects", { skip, timeout: 120_000 }, () => {
  test("after the server restarts; a job cut off by the drop is not acked with its old lease", async () => {
    const server = await TestServer.start();
    const client = new Client(server.target);
    const queue = uniqueQueue();
    const firstAttempt = gate();
    const subscriptions: number[] = [];
    const warnings: string[] = [];
    const w = new Worker(server.target, {
      queues: [queue],
      logger: { ...quiet, warn: (message: string) => warnings.push(message) },
      reconnect: { baseMs: 50, capMs: 200 },
    });
    w.on("subscribed", ({ connection }) => subscriptions.push(connection));
    w.handle(queue, async (payload, ctx) => {
      if (payload["hang"] === true && ctx.attempt === 1) {
        firstAttempt.open();
        // Outlives its stream: the signal aborts when the stream drops.
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      }
      return { attempt: ctx.attempt };
    });
    const controller = new AbortController();
    const running = w.run({ signal: controller.signal });
    try {
      const { jobId } = await client.enqueue(queue, { hang: true }, { leaseDurationMs: 2_000 });
      await firstAttempt.promise;
      await server.kill(); // releases the job the stream held, then exits
      await server.restart();
      await waitUntil(() => subscriptions.length >= 2, "a second subscription", 30_000);
      // Delivered again on the new stream; the first attempt's result was dropped.
      const job = await client.waitFor(jobId, { timeoutMs: 20_000 });
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { attempt: 2 });
      await waitUntil(() => w.counters.abandoned >= 1, "the cut-off job's result to be dropped");
      assert.ok(
        warnings.some((message) => message.includes(jobId) && message.includes("dropping")),
        warnings.join("\n"),
      );
      assert.ok(w.counters.connections >= 2);
      const fresh = await client.enqueue(queue, {});
      assert.deepEqual((await client.waitFor(fresh.jobId, { timeoutMs: 10_000 })).result, { attempt: 1 });
    } finally {
      controller.abort();
      await running;
      await client.close();
      await server.stop();
    }
  });
});
