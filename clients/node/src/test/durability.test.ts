// "fsynced" against a store that cannot confirm writes on disk: a Valkey of its own with its
// append-only file off, as an operator might run it.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, DurabilityUnavailableError, Worker, consoleLogger, type Logger } from "../index.js";
import { CallRecorder } from "./helpers/recorder.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { TestValkey, valkeyBinary } from "./helpers/valkey.js";
import { uniqueQueue } from "./helpers/wait.js";

const binary = valkeyBinary();
const skip = serverSkipReason() ?? (binary === undefined ? "no valkey-server binary (set JOBQ_VALKEY_BIN)" : undefined);
if (skip !== undefined) console.log(`skipping durability tests: ${skip}`);

function isDurabilityRefusal(error: unknown): boolean {
  assert.ok(error instanceof DurabilityUnavailableError, `not a DurabilityUnavailableError: ${String(error)}`);
  assert.equal(error.reason, "DURABILITY_UNAVAILABLE");
  assert.equal(error.codeName, "FAILED_PRECONDITION");
  assert.equal(error.retryable, false);
  return true;
}

describe("fsynced requests on a store with its append-only file off", { skip, timeout: 60_000 }, () => {
  let valkey: TestValkey;
  let server: TestServer;
  let client: Client;

  before(async () => {
    valkey = await TestValkey.start(binary as string, { appendonly: "no" });
    server = await TestServer.start({ redisUrl: valkey.url });
    client = await Client.connect(server.target);
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    await valkey?.stop();
  });

  test("an fsynced enqueue is refused with DurabilityUnavailableError and writes nothing", async () => {
    const queue = uniqueQueue();
    await assert.rejects(client.enqueue(queue, {}, { durability: "fsynced" }), isDurabilityRefusal);
    await assert.rejects(client.enqueueBatch([{ queue }, { queue }], { durability: "fsynced" }), isDurabilityRefusal);
    await assert.rejects(client.enqueueBatch([{ queue }, { queue, durability: "fsynced" }]), isDurabilityRefusal);
    assert.equal((await client.stats(queue))[0]?.queued ?? 0, 0);
    await client.enqueue(queue, {}, { durability: "applied" });
    assert.equal((await client.stats(queue))[0]?.queued, 1);
  });

  test("concurrent fsynced enqueues are refused together; applied ones made with them travel apart and stand", async () => {
    const recorder = new CallRecorder();
    const producer = new Client(server.target, { channelOptions: { interceptors: [recorder.interceptor] } });
    try {
      const queue = uniqueQueue();
      // Same tick: were the levels to share a batch, the refusal would take the applied jobs too.
      const fsynced = Array.from({ length: 5 }, () => producer.enqueue(queue, {}, { durability: "fsynced" }));
      const applied = Array.from({ length: 3 }, () => producer.enqueue(queue, {}, { durability: "applied" }));
      for (const call of fsynced) await assert.rejects(call, isDurabilityRefusal);
      assert.equal(new Set((await Promise.all(applied)).map((r) => r.jobId)).size, 3);
      assert.equal((await client.stats(queue))[0]?.queued, 3);
      assert.deepEqual(recorder.streamSizes().sort(), [3, 5]);
      // A stream per level: a batch waiting for the disk holds up no answer of another level.
      assert.equal(recorder.startedOf("EnqueueStream"), 2);
    } finally {
      await producer.close();
    }
  });

  test("a worker whose fsynced ack is refused fails the attempt with the reason", async () => {
    const queue = uniqueQueue();
    const errors: string[] = [];
    const logger: Logger = { ...consoleLogger("error"), error: (message) => errors.push(message) };
    const worker = new Worker(client, { queues: [queue], ackDurability: "fsynced", logger });
    worker.handle(queue, async () => ({ done: true }));
    const stop = new AbortController();
    const running = worker.run({ signal: stop.signal });
    try {
      const { jobId } = await client.enqueue(queue, {}, { maxAttempts: 1 });
      // Not left held until its lease runs out: failed at once, so dead on its last attempt.
      const job = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(job.state, "dead");
      assert.equal(job.result, undefined);
      assert.match(job.lastError, /cannot confirm acks on disk/);
      assert.equal(worker.counters.rejected, 1);
      assert.ok(errors.some((message) => message.includes(jobId) && message.includes("DURABILITY_UNAVAILABLE")), errors.join("\n"));
    } finally {
      stop.abort();
      await running;
    }
  });
});
