// Job groups against a real server: groupMaxActive 1 runs one job per group at a time on a
// worker with room for more, a big group does not hold back small ones (round-robin), the
// group limits read back in stats, and what the server refuses.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, InvalidArgumentError, Worker, consoleLogger, type Job, type JobSpec, type QueueLimits } from "../index.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { gate, uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping group integration tests: ${skip}`);

const quiet = consoleLogger("error");

/** Every limit 0: what an omitted one reads back as. */
const NONE: QueueLimits = { ratePerSecond: 0, burst: 0, maxActive: 0, groupRatePerSecond: 0, groupBurst: 0, groupMaxActive: 0 };

describe("Job groups against a real server", { skip, timeout: 60_000 }, () => {
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

  /** Runs a worker of `queue` (with room for `concurrency` jobs) until the returned function is awaited. */
  function run(queue: string, concurrency: number, handler: (job: Job) => Promise<void>): () => Promise<void> {
    const worker = new Worker(client, { queues: [queue], concurrency, gracePeriodMs: 5_000, logger: quiet });
    worker.handle(queue, async (_payload, ctx) => {
      await handler(ctx.job);
      return {};
    });
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    return async () => {
      controller.abort();
      await running;
    };
  }

  test("a job reads back its group; one without has none", async () => {
    const queue = uniqueQueue();
    const grouped = await client.enqueue(queue, { n: 1 }, { groupKey: "acme" });
    const [batched, plain] = await client.enqueueBatch([
      { queue, payload: { n: 2 }, groupKey: "globex" },
      { queue, payload: { n: 3 } },
    ]);
    assert.equal((await client.getStatus(grouped.jobId)).groupKey, "acme");
    assert.equal((await client.getStatus(batched?.jobId ?? "")).groupKey, "globex");
    const ungrouped = await client.getStatus(plain?.jobId ?? "");
    assert.equal(ungrouped.groupKey, undefined);
    assert.ok(!("groupKey" in ungrouped), "unset, not a key holding undefined");
    // Cancelled (a grouped job leaves its group), then listed: ListJobs reads groups back too.
    for (const id of [grouped.jobId, batched?.jobId ?? "", plain?.jobId ?? ""]) await client.cancel(id);
    const listed: Job[] = [];
    for await (const found of client.listJobs(queue, "cancelled")) listed.push(found);
    assert.deepEqual(new Set(listed.map((found) => found.groupKey)), new Set(["acme", "globex", undefined]));
  });

  test("a group key over 256 characters is refused, naming the field", async () => {
    const queue = uniqueQueue();
    await client.enqueue(queue, {}, { groupKey: "g".repeat(256) });
    await assert.rejects(client.enqueue(queue, {}, { groupKey: "g".repeat(257) }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "group_key");
      return true;
    });
    await assert.rejects(client.enqueueBatch([{ queue }, { queue, groupKey: "g".repeat(257) }]), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "requests[1].group_key");
      return true;
    });
  });

  test("setQueueLimits sets the group limits, stats reads them back, {} removes them", async () => {
    const queue = uniqueQueue();
    await client.setQueueLimits(queue, { groupMaxActive: 1 });
    let [stats] = await client.stats(queue);
    assert.deepEqual(stats?.limits, { ...NONE, groupMaxActive: 1 });
    const all = { ratePerSecond: 50, burst: 100, maxActive: 10, groupRatePerSecond: 2.5, groupBurst: 5, groupMaxActive: 2 };
    await client.setQueueLimits(queue, all);
    [stats] = await client.stats(queue);
    assert.deepEqual(stats?.limits, all);
    await client.setQueueLimits(queue, { maxActive: 3 }); // an omitted group limit is 0 too
    [stats] = await client.stats(queue);
    assert.deepEqual(stats?.limits, { ...NONE, maxActive: 3 });
    await client.setQueueLimits(queue, {});
    [stats] = await client.stats(queue);
    assert.ok(stats !== undefined);
    assert.ok(!("limits" in stats), "no limits left");
  });

  test("a bad group limit is refused, naming the field", async () => {
    const queue = uniqueQueue();
    const cases: [Partial<QueueLimits>, string][] = [
      [{ groupMaxActive: -1 }, "limits.group_max_active"], // the server's range
      [{ groupRatePerSecond: -0.5 }, "limits.group_rate_per_second"],
      [{ groupRatePerSecond: 2_000_000 }, "limits.group_rate_per_second"],
      [{ groupBurst: 5 }, "limits.group_burst"], // a group burst without a group rate
      [{ ratePerSecond: 5, groupBurst: 5 }, "limits.group_burst"], // the queue's rate is not the group's
      [{ groupRatePerSecond: 1, groupBurst: 1.5 }, "limits.group_burst"], // not an int32: refused before sending
    ];
    for (const [limits, field] of cases) {
      await assert.rejects(client.setQueueLimits(queue, limits), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.field, field);
        assert.ok(error.message.includes(field), error.message);
        return true;
      });
    }
    assert.equal((await client.stats(queue))[0]?.limits, undefined, "nothing was set");
  });

  test("with groupMaxActive 1 a worker with room for 10 gets one job per group until it acks", async () => {
    const queue = uniqueQueue();
    await client.setQueueLimits(queue, { groupMaxActive: 1 });
    const jobs: JobSpec[] = ["a", "b"].flatMap((groupKey) => [0, 1, 2].map((n) => ({ queue, payload: { n }, groupKey })));
    const ids = (await client.enqueueBatch(jobs)).map((result) => result.jobId);

    const release = gate();
    const delivered: Job[] = [];
    const running = new Map<string, number>();
    let mostOfAGroup = 0;
    const stop = run(queue, 10, async (job) => {
      delivered.push(job);
      const group = job.groupKey ?? "";
      running.set(group, (running.get(group) ?? 0) + 1);
      mostOfAGroup = Math.max(mostOfAGroup, running.get(group) ?? 0);
      try {
        await release.promise;
      } finally {
        running.set(group, (running.get(group) ?? 0) - 1);
      }
    });
    try {
      await waitUntil(() => delivered.length >= 2, "a job of each group");
      // The server leased them atomically: two active, the rest held back though the
      // worker has room for 8 more.
      const [stats] = await client.stats(queue);
      assert.equal(stats?.active, 2);
      assert.equal(stats?.queued, 4);
      assert.deepEqual(stats?.limits, { ...NONE, groupMaxActive: 1 });
      // A job of a third group goes through: the stream is open and leasing, and still
      // delivers no second job of a or b.
      const probe = await client.enqueue(queue, { n: 9 }, { groupKey: "c" });
      await waitUntil(() => delivered.length >= 3, "the third group's job");
      assert.equal(delivered.length, 3, "nothing else was delivered before any ack");
      assert.deepEqual(
        delivered.map((job) => job.groupKey).sort(),
        ["a", "b", "c"],
        "one job per group, each delivered with its groupKey",
      );
      assert.equal(delivered[2]?.id, probe.jobId);
      assert.equal(mostOfAGroup, 1);

      release.open();
      for (const id of [...ids, probe.jobId]) assert.equal((await client.waitFor(id, { timeoutMs: 10_000 })).state, "completed");
      assert.equal(delivered.length, 7, "each job once");
      assert.equal(mostOfAGroup, 1, "never two jobs of a group at once");
    } finally {
      release.open();
      await stop();
    }
  });

  test("a big group does not hold back small ones: every small job runs before the 100th big one", async () => {
    const queue = uniqueQueue();
    const big: JobSpec[] = Array.from({ length: 200 }, (_, n) => ({ queue, payload: { n }, groupKey: "big" }));
    const small: JobSpec[] = Array.from({ length: 10 }, (_, g) =>
      Array.from({ length: 5 }, (_, n): JobSpec => ({ queue, payload: { n }, groupKey: `small-${g}` })),
    ).flat();
    await client.enqueueBatch(big);
    await client.enqueueBatch(small);
    assert.equal((await client.stats(queue))[0]?.queued, 250);

    const order: string[] = [];
    const stop = run(queue, 1, async (job) => {
      order.push(job.groupKey ?? "");
    });
    try {
      await waitUntil(() => order.length >= 250, "every job to be delivered", 30_000);
    } finally {
      await stop();
    }
    assert.equal(order.length, 250, "each job once");
    const hundredthBig = order.reduce((at, group, index) => (group === "big" && at.seen < 100 ? { seen: at.seen + 1, index } : at), {
      seen: 0,
      index: -1,
    }).index;
    for (let g = 0; g < 10; g += 1) {
      const positions = order.flatMap((group, index) => (group === `small-${g}` ? [index] : []));
      assert.equal(positions.length, 5, `small-${g}'s jobs`);
      const last = Math.max(...positions);
      assert.ok(last < hundredthBig, `small-${g}'s last job was delivered at ${last}, after the 100th big one (at ${hundredthBig})`);
    }
    // Round-robin over 11 groups: the small jobs are done within five turns (55 leases).
    const lastSmall = Math.max(...order.flatMap((group, index) => (group === "big" ? [] : [index])));
    assert.ok(lastSmall < 60, `the last small job was delivered at ${lastSmall}`);
    await waitUntil(async () => (await client.stats(queue))[0]?.completed === 250, "every job to complete");
  });
});
