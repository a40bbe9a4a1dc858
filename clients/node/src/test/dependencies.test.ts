// Job dependencies against a real server: a child waits for its parents, is delivered with
// their ids once they completed and reads their results; batch refs; what a failed parent
// does to its children; what the server refuses.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Client,
  InvalidArgumentError,
  NotFoundError,
  Worker,
  consoleLogger,
  type Job,
  type JobContext,
  type JsonObject,
} from "../index.js";
import type { LeaseResponse } from "../gen/jobqueue/v1/job_queue_service.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping dependency integration tests: ${skip}`);

const quiet = consoleLogger("error");

describe("Job dependencies against a real server", { skip, timeout: 60_000 }, () => {
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

  /**
   * Leases one job of `queue` through the raw generated client, as a worker in another
   * language would, and acks it with `result`; resolves with its id once it is completed.
   */
  async function leaseAndAck(queue: string, result: JsonObject): Promise<string> {
    const call = client.raw.lease();
    try {
      const leased = new Promise<{ jobId: string; token: string }>((resolve, reject) => {
        call.on("data", (response: LeaseResponse) => {
          const job = response.jobs[0];
          if (job?.job !== undefined) resolve({ jobId: job.job.id, token: job.leaseToken });
        });
        call.on("error", reject);
      });
      call.write({
        subscribe: { queues: [queue], maxInFlight: 1, workerId: "raw", leaseDuration: undefined },
        acks: [],
        fails: [],
        extends: [],
        progress: [],
      });
      const grant = await leased;
      call.write({
        subscribe: undefined,
        acks: [{ jobId: grant.jobId, leaseToken: grant.token, result, durability: 0, handlerDuration: undefined }],
        fails: [],
        extends: [],
        progress: [],
      });
      await waitUntil(async () => (await client.getStatus(grant.jobId)).state === "completed", `job ${grant.jobId} to complete`);
      return grant.jobId;
    } finally {
      call.on("error", () => undefined);
      call.end();
      await waitUntil(() => call.readableEnded || call.destroyed, "the lease stream to end");
    }
  }

  /** Runs a worker of `queue` with `handler` (one job at a time) until the returned function is awaited. */
  function run(queue: string, handler: (payload: JsonObject, ctx: JobContext) => Promise<JsonObject>): () => Promise<void> {
    const worker = new Worker(client, { queues: [queue], concurrency: 1, gracePeriodMs: 5_000, logger: quiet }).handle(queue, handler);
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    return async () => {
      controller.abort();
      await running;
    };
  }

  test("a child waits for its parent, then is delivered with its id and reads its result", async () => {
    const parents = uniqueQueue();
    const children = uniqueQueue();
    const a = await client.enqueue(parents, { n: 42 });
    const b = await client.enqueue(children, { child: true }, { dependsOn: [a.jobId] });

    const waiting = await client.getStatus(b.jobId);
    assert.equal(waiting.state, "waiting", "the child waits while its parent is queued");
    assert.deepEqual(waiting.dependsOn, [a.jobId]);
    assert.equal(waiting.onDependencyFailure, undefined, "the default policy reads as unset");
    assert.equal((await client.stats(children))[0]?.waiting, 1);
    const listed: Job[] = [];
    for await (const job of client.listJobs(children, "waiting")) listed.push(job);
    assert.deepEqual(listed.map((job) => job.id), [b.jobId]);

    assert.equal(await leaseAndAck(parents, { doubled: 84 }), a.jobId);
    await waitUntil(async () => (await client.getStatus(b.jobId)).state === "queued", "the child to be queued");
    assert.equal((await client.stats(children))[0]?.waiting, 0);

    const delivered: Job[] = [];
    const stop = run(children, async (_payload, ctx) => {
      delivered.push(ctx.job);
      // What the README shows: a child reads its parents' results with getStatus.
      const inputs = await Promise.all(ctx.job.dependsOn.map((id) => client.getStatus(id)));
      return { fromParents: inputs.map((parent) => parent.result ?? null) };
    });
    try {
      const done = await client.waitFor(b.jobId, { timeoutMs: 10_000 });
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { fromParents: [{ doubled: 84 }] });
      assert.deepEqual(delivered.map((job) => job.dependsOn), [[a.jobId]], "delivered once, with its parent's id");
      assert.deepEqual((await client.getStatus(a.jobId)).result, { doubled: 84 });
    } finally {
      await stop();
    }
  });

  test("a batch with refs (a, b -> c) delivers c last", async () => {
    const queue = uniqueQueue();
    // c is high priority: were its refs ignored, it would be leased first.
    const [a, b, c] = await client.enqueueBatch([
      { queue, payload: { name: "a" }, ref: "a" },
      { queue, payload: { name: "b" }, ref: "b" },
      { queue, payload: { name: "c" }, priority: "high", dependsOnRefs: ["a", "b"] },
    ]);
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    const child = await client.getStatus(c.jobId);
    assert.equal(child.state, "waiting");
    assert.deepEqual([...child.dependsOn].sort(), [a.jobId, b.jobId].sort(), "refs resolved to the parents' ids");
    assert.equal((await client.getStatus(a.jobId)).state, "queued");

    const order: string[] = [];
    const stop = run(queue, async (payload, ctx) => {
      order.push(String(payload["name"]));
      return { name: String(payload["name"]), parents: ctx.job.dependsOn.length };
    });
    try {
      const done = await client.waitFor(c.jobId, { timeoutMs: 10_000 });
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { name: "c", parents: 2 });
      assert.deepEqual(order, ["a", "b", "c"]);
    } finally {
      await stop();
    }
  });

  test("a batch whose refs form a cycle, or name no job of it, is refused and nothing is written", async () => {
    const queue = uniqueQueue();
    // A cycle is named by the list of one job on it (`requests[1].depends_on_refs`), a bad ref by its place.
    const refField = /^requests\[\d+\]\.(depends_on_refs(\[\d+\])?|ref)$/;
    const cycle = client.enqueueBatch([
      { queue, payload: { n: 0 } }, // a job without refs is not written either
      { queue, ref: "a", dependsOnRefs: ["c"] },
      { queue, ref: "b", dependsOnRefs: ["a"] },
      { queue, ref: "c", dependsOnRefs: ["b"] },
    ]);
    await assert.rejects(cycle, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.match(error.field ?? "", refField);
      return true;
    });
    const unknown = client.enqueueBatch([{ queue, ref: "a" }, { queue, dependsOnRefs: ["a", "nope"] }]);
    await assert.rejects(unknown, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "requests[1].depends_on_refs[1]");
      return true;
    });
    const duplicate = client.enqueueBatch([{ queue, ref: "a" }, { queue, ref: "a" }]);
    await assert.rejects(duplicate, (error: unknown) => error instanceof InvalidArgumentError && refField.test(error.field ?? ""));
    const [stats] = await client.stats(queue);
    assert.equal((stats?.queued ?? 0) + (stats?.waiting ?? 0), 0, "nothing was written");
  });

  test("an unknown parent is NotFoundError; a malformed one is InvalidArgumentError naming it", async () => {
    const queue = uniqueQueue();
    const missing = `${uniqueQueue()}:01ARZ3NDEKTSV4RRFFQ69G5FAV`;
    const notFound = (error: unknown): boolean => {
      assert.ok(error instanceof NotFoundError, String(error));
      assert.equal(error.field, "depends_on[0]");
      return true;
    };
    await assert.rejects(client.enqueue(queue, {}, { dependsOn: [missing] }), notFound);
    const { jobId } = await client.enqueue(queue, {});
    // Gathered in one batch with other calls, it fails its own call only.
    const [fine, refused, alsoFine] = await Promise.allSettled([
      client.enqueue(queue, { n: 1 }, { dependsOn: [jobId] }),
      client.enqueue(queue, { n: 2 }, { dependsOn: [missing] }),
      client.enqueue(queue, { n: 3 }),
    ]);
    assert.equal(fine?.status, "fulfilled");
    assert.equal(alsoFine?.status, "fulfilled");
    assert.ok(refused?.status === "rejected" && notFound(refused.reason));
    await assert.rejects(client.enqueue(queue, {}, { dependsOn: [jobId, "not an id"] }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "depends_on[1]");
      return true;
    });
    await assert.rejects(client.enqueueBatch([{ queue }, { queue, dependsOn: ["not an id"] }]), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "requests[1].depends_on[0]");
      return true;
    });
  });

  test("a parent that ends cancelled: its children follow their onDependencyFailure", async () => {
    const queue = uniqueQueue();
    const parent = await client.enqueue(queue, {}, { delayMs: 60_000 });
    const [cancelled, dead, anyway] = await client.enqueueBatch([
      { queue, dependsOn: [parent.jobId] },
      { queue, dependsOn: [parent.jobId], onDependencyFailure: "dead_letter" },
      { queue, dependsOn: [parent.jobId], onDependencyFailure: "run_anyway" },
    ]);
    assert.ok(cancelled !== undefined && dead !== undefined && anyway !== undefined);
    assert.equal((await client.getStatus(dead.jobId)).onDependencyFailure, "dead_letter");
    assert.equal((await client.getStatus(anyway.jobId)).onDependencyFailure, "run_anyway");

    await client.cancel(parent.jobId);
    const ended = await client.waitFor(cancelled.jobId, { timeoutMs: 10_000 });
    assert.equal(ended.state, "cancelled");
    assert.match(ended.lastError, new RegExp(`dependency ${parent.jobId} ended CANCELLED`));
    const deadLettered = await client.waitFor(dead.jobId, { timeoutMs: 10_000 });
    assert.equal(deadLettered.state, "dead");
    assert.match(deadLettered.lastError, new RegExp(`dependency ${parent.jobId} ended CANCELLED`));
    await waitUntil(async () => (await client.getStatus(anyway.jobId)).state === "queued", "the run_anyway child to be queued");
  });
});
