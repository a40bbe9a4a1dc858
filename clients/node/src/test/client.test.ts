import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Client,
  DeadlineExceededError,
  InvalidArgumentError,
  MAX_BATCH,
  NotFoundError,
  WrongStateError,
  type Job,
  type ListJobsOptions,
} from "../index.js";
import { JobState } from "../gen/jobqueue/v1/job.js";
import { ListJobsRequest } from "../gen/jobqueue/v1/job_queue_service.js";
import { sleep } from "../timing.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping client integration tests: ${skip}`);

describe("Client against a real server", { skip, timeout: 60_000 }, () => {
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

  test("enqueue and getStatus round-trip a job", async () => {
    const queue = uniqueQueue();
    const payload = { to: "ada@example.com", nested: { list: [1, 2.5, "ü", null, true], empty: {} }, n: 0 };
    const { jobId, duplicate } = await client.enqueue(queue, payload, {
      priority: "high",
      maxAttempts: 7,
      metadata: { tenant: "acme" },
      leaseDurationMs: 2_000,
    });
    assert.equal(duplicate, false);
    assert.ok(jobId.startsWith(`${queue}:`));
    const job = await client.getStatus(jobId);
    assert.equal(job.id, jobId);
    assert.equal(job.queue, queue);
    assert.equal(job.state, "queued");
    assert.deepEqual(job.payload, payload);
    assert.equal(job.priority, "high");
    assert.equal(job.attempts, 0);
    assert.equal(job.maxAttempts, 7);
    assert.deepEqual(job.metadata, { tenant: "acme" });
    assert.equal(job.leaseDurationMs, 2_000);
    assert.ok(job.createTime instanceof Date);
    assert.equal(job.result, undefined);
    assert.deepEqual(job.errors, []);
  });

  test("a binary payload arrives as bytes", async () => {
    const { jobId } = await client.enqueue(uniqueQueue(), new Uint8Array([0, 1, 254, 255]));
    const job = await client.getStatus(jobId);
    assert.deepEqual([...job.payloadBytes], [0, 1, 254, 255]);
    assert.deepEqual(job.payload, {});
  });

  test("a delayed job is scheduled", async () => {
    const before = Date.now();
    const { jobId } = await client.enqueue(uniqueQueue(), {}, { delayMs: 60_000 });
    const job = await client.getStatus(jobId);
    assert.equal(job.state, "scheduled");
    assert.ok(job.scheduleTime !== undefined && job.scheduleTime.getTime() >= before + 59_000);
  });

  test("an idempotency key returns the first job", async () => {
    const queue = uniqueQueue();
    const first = await client.enqueue(queue, { n: 1 }, { idempotencyKey: "order-42" });
    const second = await client.enqueue(queue, { n: 2 }, { idempotencyKey: "order-42" });
    assert.deepEqual(second, { jobId: first.jobId, duplicate: true });
  });

  test("a unique key returns the pending job until it ends, then is free again", async () => {
    const queue = uniqueQueue();
    const first = await client.enqueue(queue, { n: 1 }, { uniqueKey: "invoice-7" });
    assert.equal(first.duplicate, false);
    const again = await client.enqueue(queue, { n: 2 }, { uniqueKey: "invoice-7", delayMs: 60_000 });
    assert.deepEqual(again, { jobId: first.jobId, duplicate: true });
    const [batched] = await client.enqueueBatch([{ queue, payload: { n: 3 }, uniqueKey: "invoice-7" }]);
    assert.deepEqual(batched, { jobId: first.jobId, duplicate: true });
    const job = await client.getStatus(first.jobId);
    assert.equal(job.uniqueKey, "invoice-7");
    assert.deepEqual(job.payload, { n: 1 }, "the first job is unchanged");
    assert.equal((await client.stats(queue))[0]?.queued, 1, "nothing new was created");

    await client.cancel(first.jobId);
    const after = await client.enqueue(queue, { n: 4 }, { uniqueKey: "invoice-7" });
    assert.notEqual(after.jobId, first.jobId);
    assert.equal(after.duplicate, false);
    assert.equal((await client.getStatus(after.jobId)).uniqueKey, "invoice-7");
    // Another queue, or no key, is not the same job.
    assert.equal((await client.enqueue(uniqueQueue(), {}, { uniqueKey: "invoice-7" })).duplicate, false);
    assert.equal((await client.getStatus((await client.enqueue(queue, {})).jobId)).uniqueKey, undefined);
  });

  test("a unique key over 256 characters is refused by the server, naming the field", async () => {
    const queue = uniqueQueue();
    await client.enqueue(queue, {}, { uniqueKey: "k".repeat(256) });
    await assert.rejects(client.enqueue(queue, {}, { uniqueKey: "k".repeat(257) }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "unique_key");
      return true;
    });
    await assert.rejects(client.enqueueBatch([{ queue }, { queue, uniqueKey: "k".repeat(257) }]), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "requests[1].unique_key");
      return true;
    });
  });

  test("enqueueBatch answers in order", async () => {
    const queue = uniqueQueue();
    const results = await client.enqueueBatch([
      { queue, payload: { i: 0 } },
      { queue, payload: { i: 1 }, priority: "low" },
      { queue, payload: { i: 2 }, delayMs: 60_000 },
    ]);
    assert.equal(results.length, 3);
    const jobs = await Promise.all(results.map((r) => client.getStatus(r.jobId)));
    assert.deepEqual(jobs.map((j) => j.payload["i"]), [0, 1, 2]);
    assert.deepEqual(jobs.map((j) => j.state), ["queued", "queued", "scheduled"]);
    assert.deepEqual(await client.enqueueBatch([]), []);
  });

  test("an fsynced enqueue and batch are confirmed on disk (the embedded Valkey's AOF is on)", async () => {
    const queue = uniqueQueue();
    const one = await client.enqueue(queue, { n: 1 }, { durability: "fsynced" });
    const batch = await client.enqueueBatch(
      [{ queue, payload: { n: 2 } }, { queue, payload: { n: 3 }, durability: "fsynced" }],
      { durability: "applied" },
    );
    const fsynced = await client.enqueueBatch([{ queue, payload: { n: 4 } }], { durability: "fsynced" });
    const ids = [one, ...batch, ...fsynced].map((r) => r.jobId);
    const jobs = await Promise.all(ids.map((id) => client.getStatus(id)));
    assert.deepEqual(jobs.map((j) => j.payload["n"]), [1, 2, 3, 4]);
    assert.ok(jobs.every((j) => j.state === "queued"));
  });

  test("an unknown durability level is refused before sending, naming the field", async () => {
    const queue = uniqueQueue();
    const bogus = "eventually" as unknown as "applied";
    await assert.rejects(client.enqueue(queue, {}, { durability: bogus }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "durability");
      return true;
    });
    await assert.rejects(client.enqueueBatch([{ queue }, { queue, durability: bogus }]), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "requests[1].durability");
      return true;
    });
    await assert.rejects(client.enqueueBatch([{ queue }], { durability: bogus }), /durability/);
    assert.equal((await client.stats(queue))[0]?.queued ?? 0, 0, "nothing was written");
  });

  test("listJobs pages through every job of a state, in lease order", async () => {
    const queue = uniqueQueue();
    const enqueued = await client.enqueueBatch(Array.from({ length: 7 }, (_, i) => ({ queue, payload: { i } })));
    await client.enqueue(queue, {}, { delayMs: 60_000 });
    // Three per page: the seven queued jobs take three calls.
    const first = await new Promise<{ jobs: unknown[]; nextPageToken: string }>((resolve, reject) =>
      client.raw.listJobs(ListJobsRequest.fromPartial({ queue, state: JobState.JOB_STATE_QUEUED, pageSize: 3 }), (error, page) => (error ? reject(error) : resolve(page))),
    );
    assert.equal(first.jobs.length, 3);
    assert.notEqual(first.nextPageToken, "");
    const listed: Job[] = [];
    for await (const job of client.listJobs(queue, "queued", { pageSize: 3 })) listed.push(job);
    assert.deepEqual(listed.map((j) => j.id), enqueued.map((r) => r.jobId));
    assert.deepEqual(listed.map((j) => j.payload["i"]), [0, 1, 2, 3, 4, 5, 6]);
    assert.ok(listed.every((j) => j.state === "queued" && j.queue === queue));
    const scheduled: string[] = [];
    for await (const job of client.listJobs(queue, "scheduled")) scheduled.push(job.state);
    assert.deepEqual(scheduled, ["scheduled"]);
    for await (const job of client.listJobs(queue, "dead")) assert.fail(`no job is dead, yet ${job.id} was listed`);
  });

  test("listJobs stops fetching when the loop stops", async () => {
    const queue = uniqueQueue();
    await client.enqueueBatch(Array.from({ length: 5 }, () => ({ queue })));
    const taken: string[] = [];
    for await (const job of client.listJobs(queue, "queued", { pageSize: 2 })) {
      taken.push(job.id);
      if (taken.length === 3) break;
    }
    assert.equal(taken.length, 3);
  });

  test("listJobs refuses a bad state, page size or queue with the field", async () => {
    const queue = uniqueQueue();
    const drain = async (jobs: AsyncIterable<Job>): Promise<void> => {
      for await (const _ of jobs);
    };
    const field = (name: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === name;
    await assert.rejects(drain(client.listJobs(queue, "sleeping" as unknown as "queued")), field("state"));
    await assert.rejects(drain(client.listJobs(queue, "queued", { pageSize: 1.5 })), field("page_size"));
    await assert.rejects(drain(client.listJobs(queue, "queued", { pageSize: 100_000 })), field("page_size"));
    await assert.rejects(drain(client.listJobs("bad queue", "queued")), field("queue"));
  });

  test("listJobs filters by metadata and by enqueue time, a page of one at a time", async () => {
    const queue = uniqueQueue();
    const list = async (options: ListJobsOptions): Promise<string[]> => {
      const found: string[] = [];
      for await (const job of client.listJobs(queue, "queued", { pageSize: 1, ...options })) found.push(job.id);
      return found;
    };
    // Apart in time, so that each has an enqueue time (to the ms) of its own.
    const metadatas: Record<string, string>[] = [{ customer: "acme" }, { customer: "globex" }, { customer: "acme", region: "eu" }, {}];
    const ids: string[] = [];
    for (const metadata of metadatas) {
      ids.push((await client.enqueue(queue, {}, { metadata })).jobId);
      await sleep(5);
    }
    const [acme, globex, acmeEu, plain] = ids;
    const created = await Promise.all(ids.map(async (id) => (await client.getStatus(id)).createTime));
    const [, second, third] = created;
    assert.ok(second !== undefined && third !== undefined);
    assert.ok(created.every((time, i) => i === 0 || (time?.getTime() ?? 0) > (created[i - 1]?.getTime() ?? 0)), "distinct times");

    assert.deepEqual(await list({ metadata: { customer: "acme" } }), [acme, acmeEu]);
    assert.deepEqual(await list({ metadata: { customer: "acme", region: "eu" } }), [acmeEu]);
    assert.deepEqual(await list({ metadata: { customer: "globex" } }), [globex]);
    assert.deepEqual(await list({ metadata: { customer: "initech" } }), []);
    assert.deepEqual(await list({ metadata: {} }), ids, "an empty map filters nothing");
    // createdAfter is inclusive, createdBefore exclusive.
    assert.deepEqual(await list({ createdAfter: second }), [globex, acmeEu, plain]);
    assert.deepEqual(await list({ createdBefore: second }), [acme]);
    assert.deepEqual(await list({ createdAfter: second, createdBefore: third }), [globex]);
    assert.deepEqual(await list({ createdAfter: second, metadata: { customer: "acme" } }), [acmeEu]);
    assert.deepEqual(await list({ createdAfter: new Date(Date.now() + 60_000) }), []);
  });

  test("listJobs follows a filtered listing across empty pages to a match past 5,000 jobs", async () => {
    const queue = uniqueQueue();
    // One filtered call examines at most 5,000 jobs: the first page comes back empty, with a token.
    for (let sent = 0; sent < 5_000; sent += MAX_BATCH) {
      await client.enqueueBatch(Array.from({ length: MAX_BATCH }, () => ({ queue })));
    }
    const { jobId } = await client.enqueue(queue, {}, { metadata: { k: "v" } });
    const first = await new Promise<{ jobs: unknown[]; nextPageToken: string }>((resolve, reject) =>
      client.raw.listJobs(
        ListJobsRequest.fromPartial({ queue, state: JobState.JOB_STATE_QUEUED, metadata: { k: "v" } }),
        (error, page) => (error ? reject(error) : resolve(page)),
      ),
    );
    assert.equal(first.jobs.length, 0);
    assert.notEqual(first.nextPageToken, "");
    const found: string[] = [];
    for await (const job of client.listJobs(queue, "queued", { metadata: { k: "v" } })) found.push(job.id);
    assert.deepEqual(found, [jobId]);
  });

  test("listJobs refuses bad filters with the field", async () => {
    const queue = uniqueQueue();
    const drain = async (jobs: AsyncIterable<Job>): Promise<void> => {
      for await (const _ of jobs);
    };
    const field = (name: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === name;
    const now = new Date();
    await assert.rejects(drain(client.listJobs(queue, "queued", { createdAfter: now, createdBefore: now })), field("created_before"));
    await assert.rejects(drain(client.listJobs(queue, "queued", { createdAfter: new Date(-1_000) })), field("created_after"));
    await assert.rejects(drain(client.listJobs(queue, "queued", { createdBefore: new Date(Number.NaN) })), field("created_before"));
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    await assert.rejects(drain(client.listJobs(queue, "queued", { metadata: many })), field("metadata"));
  });

  test("stats count a queue's jobs by state", async () => {
    const queue = uniqueQueue();
    await client.enqueue(queue, {});
    await client.enqueue(queue, {});
    await client.enqueue(queue, {}, { delayMs: 60_000 });
    const [stats] = await client.stats(queue);
    assert.ok(stats !== undefined);
    assert.equal(stats.queue, queue);
    assert.equal(stats.queued, 2);
    assert.equal(stats.scheduled, 1);
    assert.equal(stats.active, 0);
    assert.ok(stats.oldestQueuedAgeMs >= 0);
    assert.equal(stats.paused, false);
    const all = await client.stats();
    assert.ok(all.some((s) => s.queue === queue));
  });

  test("cancel stops a queued job, retry sends it back", async () => {
    const { jobId } = await client.enqueue(uniqueQueue(), {});
    await client.cancel(jobId);
    assert.equal((await client.getStatus(jobId)).state, "cancelled");
    await assert.rejects(client.cancel(jobId), (error: unknown) => {
      assert.ok(error instanceof WrongStateError);
      assert.equal(error.reason, "WRONG_STATE");
      return true;
    });
    await client.retry(jobId);
    assert.equal((await client.getStatus(jobId)).state, "queued");
    await assert.rejects(client.retry(jobId), WrongStateError);
  });

  test("pauseQueue and resumeQueue refuse an invalid queue name, naming the field", async () => {
    for (const call of [() => client.pauseQueue("bad queue"), () => client.resumeQueue("bad queue")]) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.equal(error.field, "queue");
        assert.equal(error.reason, "INVALID_ARGUMENT");
        return true;
      });
    }
  });

  test("setQueueLimits sets a queue's limits, stats shows them, {} removes them", async () => {
    const queue = uniqueQueue();
    assert.equal((await client.stats(queue))[0]?.limits, undefined, "no limits at first");
    await client.setQueueLimits(queue, { ratePerSecond: 2.5, burst: 3, maxActive: 4 });
    let [stats] = await client.stats(queue);
    const none = { groupRatePerSecond: 0, groupBurst: 0, groupMaxActive: 0 };
    assert.deepEqual(stats?.limits, { ratePerSecond: 2.5, burst: 3, maxActive: 4, ...none });
    await client.setQueueLimits(queue, { maxActive: 2 }); // an omitted limit is 0: none of that kind
    [stats] = await client.stats(queue);
    assert.deepEqual(stats?.limits, { ratePerSecond: 0, burst: 0, maxActive: 2, ...none });
    await client.setQueueLimits(queue, {});
    [stats] = await client.stats(queue);
    assert.ok(stats !== undefined);
    assert.equal(stats.limits, undefined);
    assert.ok(!("limits" in stats));
  });

  test("setQueueLimits refuses a bad value, naming the field", async () => {
    const queue = uniqueQueue();
    const cases: [Parameters<Client["setQueueLimits"]>[1], string][] = [
      [{ maxActive: -1 }, "limits.max_active"], // the server's range
      [{ burst: 5 }, "limits.burst"], // a burst without a rate
      [{ ratePerSecond: -0.5 }, "limits.rate_per_second"],
      [{ ratePerSecond: 1, burst: 1.5 }, "limits.burst"], // not an int32: refused before sending
    ];
    for (const [limits, field] of cases) {
      await assert.rejects(client.setQueueLimits(queue, limits), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.field, field);
        assert.ok(error.message.includes(field), error.message);
        return true;
      });
    }
    await assert.rejects(client.setQueueLimits("bad queue", { maxActive: 1 }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "queue");
      return true;
    });
    assert.equal((await client.stats(queue))[0]?.limits, undefined, "nothing was set");
  });

  test("waitFor returns a cancelled job at once", async () => {
    const { jobId } = await client.enqueue(uniqueQueue(), {});
    await client.cancel(jobId);
    const job: Job = await client.waitFor(jobId, { timeoutMs: 5_000 });
    assert.equal(job.state, "cancelled");
  });

  test("waitFor gives up after its timeout", async () => {
    const { jobId } = await client.enqueue(uniqueQueue(), {});
    await assert.rejects(client.waitFor(jobId, { timeoutMs: 200 }), (error: unknown) => {
      assert.ok(error instanceof DeadlineExceededError);
      assert.equal(error.reason, "WAIT_TIMEOUT");
      return true;
    });
  });

  test("waitFor stops when its signal aborts", async () => {
    const { jobId } = await client.enqueue(uniqueQueue(), {});
    const controller = new AbortController();
    const waiting = client.waitFor(jobId, { signal: controller.signal });
    controller.abort(new Error("no longer needed"));
    await assert.rejects(waiting, /no longer needed/);
  });

  test("an invalid queue name is InvalidArgumentError naming the field", async () => {
    await assert.rejects(client.enqueue("not a queue!", {}), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "queue");
      assert.equal(error.reason, "INVALID_ARGUMENT");
      return true;
    });
    await assert.rejects(client.stats("bad/name"), (error: unknown) => error instanceof InvalidArgumentError && error.field === "queue");
  });

  test("a batch error names the request by its index in the whole batch", async () => {
    const queue = uniqueQueue();
    await assert.rejects(client.enqueueBatch([{ queue }, { queue: "bad queue" }]), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "requests[1].queue");
      return true;
    });
    assert.equal((await client.stats(queue))[0]?.queued ?? 0, 0, "nothing was written");
  });

  test("a lease duration of zero is refused by the server with its field", async () => {
    await assert.rejects(client.enqueue(uniqueQueue(), {}, { leaseDurationMs: 0 }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, "lease_duration");
      return true;
    });
  });

  test("an unknown job is NotFoundError; a malformed id is InvalidArgumentError", async () => {
    await assert.rejects(client.getStatus(`${uniqueQueue()}:01ARZ3NDEKTSV4RRFFQ69G5FAV`), (error: unknown) => {
      assert.ok(error instanceof NotFoundError);
      assert.equal(error.reason, "JOB_NOT_FOUND");
      return true;
    });
    await assert.rejects(client.getStatus("nope"), (error: unknown) => error instanceof InvalidArgumentError && error.field === "job_id");
  });

  test("a call can be aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(client.getStatus("q:01ARZ3NDEKTSV4RRFFQ69G5FAV", { signal: controller.signal }), /stop/);
  });

  test("connect fails with UnavailableError when nothing listens", async () => {
    const port = await import("./helpers/server.js").then((m) => m.freePort());
    await assert.rejects(Client.connect(`127.0.0.1:${port}`, { waitMs: 300 }), (error: unknown) => {
      assert.equal((error as Error).name, "UnavailableError");
      return true;
    });
  });

  test("a job enqueued here can be waited for until a worker finishes it", async () => {
    // Settled through the raw generated client, as a worker in another language would.
    const queue = uniqueQueue();
    const { jobId } = await client.enqueue(queue, { x: 1 });
    const call = client.raw.lease();
    const leased = new Promise<{ jobId: string; token: string }>((resolve, reject) => {
      call.on("data", (response) => {
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
    assert.equal(grant.jobId, jobId);
    const waiting = client.waitFor(jobId, { timeoutMs: 10_000 });
    call.write({ subscribe: undefined, acks: [{ jobId, leaseToken: grant.token, result: { done: true }, durability: 0, handlerDuration: undefined }], fails: [], extends: [], progress: [] });
    const job = await waiting;
    assert.equal(job.state, "completed");
    assert.deepEqual(job.result, { done: true });
    call.on("error", () => undefined);
    call.end();
    await waitUntil(() => call.readableEnded || call.destroyed, "the stream to end");
  });
});
