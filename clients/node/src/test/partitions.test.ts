// Partitioned queues against a real server: createQueue makes, grows and refuses to shrink a
// queue, stats counts a partitioned queue as one and shows its partitions, jobs with the same
// partition key are leased in the order they were enqueued, and a schedule's template keeps
// its partition key.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, InvalidArgumentError, Worker, consoleLogger, type JobSpec } from "../index.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping partitioned queue integration tests: ${skip}`);

const quiet = consoleLogger("error");

describe("Partitioned queues against a real server", { skip, timeout: 60_000 }, () => {
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

  test("createQueue makes a queue with its partitions, again changes nothing, fewer is refused", async () => {
    assert.deepEqual(await client.createQueue("orders", 3), { queue: "orders", partitions: 3, changed: true });
    assert.deepEqual(await client.createQueue("orders", 3), { queue: "orders", partitions: 3, changed: false });
    await assert.rejects(client.createQueue("orders", 2), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, "partitions");
      assert.equal(error.reason, "INVALID_ARGUMENT");
      return true;
    });
    assert.equal((await client.stats("orders"))[0]?.partitions, 3, "the refused call changed nothing");
  });

  test("createQueue adds partitions to a queue; a count out of range is refused, naming the field", async () => {
    const queue = uniqueQueue();
    assert.deepEqual(await client.createQueue(queue, 0), { queue, partitions: 1, changed: true }, "0 means 1");
    assert.deepEqual(await client.createQueue(queue, 4), { queue, partitions: 4, changed: true });
    for (const partitions of [65, -1]) {
      await assert.rejects(client.createQueue(uniqueQueue(), partitions), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.field, "partitions");
        return true;
      });
    }
  });

  test("a partitioned queue's jobs count as one queue's in stats, with its partitions", async () => {
    await client.createQueue("orders", 3); // made by the first test; as it is already, when run alone
    // Half gathered on the EnqueueStream, half in one EnqueueBatch call: both carry the key.
    const alone = Array.from({ length: 15 }, (_, n) => client.enqueue("orders", { n }, { partitionKey: `customer-${n % 5}` }));
    await Promise.all(alone);
    const batch: JobSpec[] = Array.from({ length: 15 }, (_, n) => ({
      queue: "orders",
      payload: { n: 15 + n },
      partitionKey: `customer-${n % 5}`,
    }));
    await client.enqueueBatch(batch);
    const [stats] = await client.stats("orders");
    assert.ok(stats !== undefined);
    assert.equal(stats.queue, "orders");
    assert.equal(stats.queued, 30);
    assert.equal(stats.partitions, 3);
    const listed = (await client.stats()).filter((found) => found.queue === "orders");
    assert.deepEqual(
      listed.map((found) => [found.queue, found.queued, found.partitions]),
      [["orders", 30, 3]],
      "listed once with every queue, not once per partition",
    );
  });

  test("a queue never created has one partition", async () => {
    const queue = uniqueQueue();
    await client.enqueue(queue, {}, { partitionKey: "ignored" }); // on a queue with one partition
    const [stats] = await client.stats(queue);
    assert.equal(stats?.queued, 1);
    assert.equal(stats?.partitions, 1);
  });

  test("jobs with the same partition key are leased in the order they were enqueued", async () => {
    const queue = uniqueQueue();
    await client.createQueue(queue, 4);
    const keys = ["alpha", "beta", "gamma"];
    // One at a time, so that the order of enqueue is the order of the answers.
    for (let n = 0; n < 10; n += 1) {
      for (const key of keys) await client.enqueue(queue, { key, n }, { partitionKey: key });
    }

    // One job at a time: the handler sees the jobs in the order they were leased.
    const leased: { key: string; n: number }[] = [];
    const worker = new Worker(client, { queues: [queue], concurrency: 1, gracePeriodMs: 5_000, logger: quiet });
    worker.handle<{ key: string; n: number }>(queue, async (payload) => {
      leased.push(payload);
      return {};
    });
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    try {
      await waitUntil(() => leased.length >= 30, "every job to be leased");
    } finally {
      controller.abort();
      await running;
    }
    assert.equal(leased.length, 30, "each job once");
    for (const key of keys) {
      assert.deepEqual(
        leased.filter((job) => job.key === key).map((job) => job.n),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        `${key}'s jobs in enqueue order`,
      );
    }
  });

  test("a schedule's template keeps its partition key", async () => {
    const name = `partitioned-${uniqueQueue()}`;
    const queue = uniqueQueue();
    try {
      const info = await client.createSchedule({ name, everyMs: 3_600_000, queue, partitionKey: "tenant-7" });
      assert.equal(info.partitionKey, "tenant-7");
      assert.equal((await client.getSchedule(name)).partitionKey, "tenant-7");
      const { partitionKey: _dropped, ...rest } = info;
      assert.equal((await client.updateSchedule(rest)).partitionKey, undefined, "unset by an update without it");
    } finally {
      await client.deleteSchedule(name).catch(() => undefined);
    }
  });
});
