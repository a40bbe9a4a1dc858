// Producer batching against a real server: concurrent enqueue() calls share EnqueueBatch
// calls, and each caller still gets its own id or its own error (docs/clients.md).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, DeadlineExceededError, InvalidArgumentError, type ClientOptions, type EnqueueResult } from "../index.js";
import { CallRecorder } from "./helpers/recorder.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping batching tests: ${skip}`);

describe("enqueue batching against a real server", { skip, timeout: 60_000 }, () => {
  let server: TestServer;
  let reader: Client;
  const opened: Client[] = [];

  /** A client whose calls `recorder` sees. */
  function recordedClient(recorder: CallRecorder, options: ClientOptions = {}): Client {
    const client = new Client(server.target, { ...options, channelOptions: { interceptors: [recorder.interceptor] } });
    opened.push(client);
    return client;
  }

  async function queued(queue: string): Promise<number> {
    return (await reader.stats(queue))[0]?.queued ?? 0;
  }

  before(async () => {
    server = await TestServer.start();
    reader = await Client.connect(server.target, { batching: false });
  });

  after(async () => {
    await Promise.all(opened.map((client) => client.close()));
    await reader?.close();
    await server?.stop();
  });

  test("64 concurrent callers get distinct ids for jobs that exist, in far fewer calls than jobs", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    const rounds = 10;
    const loops = Array.from({ length: 64 }, async (_, loop) => {
      const results: Array<[number, EnqueueResult]> = [];
      for (let round = 0; round < rounds; round += 1) {
        const n = loop * rounds + round;
        results.push([n, await client.enqueue(queue, { n })]);
      }
      return results;
    });
    const results = (await Promise.all(loops)).flat();
    const ids = new Set(results.map(([, result]) => result.jobId));
    assert.equal(ids.size, 640);
    assert.ok(results.every(([, result]) => !result.duplicate));
    // Each caller's id is its own job: the payload it sent comes back.
    for (const [n, result] of results.filter((_, index) => index % 37 === 0)) {
      assert.deepEqual((await reader.getStatus(result.jobId)).payload, { n });
    }
    assert.equal(await queued(queue), 640);
    assert.equal(recorder.of("Enqueue").length, 0);
    const sizes = recorder.batchSizes();
    assert.equal(sizes.reduce((a, b) => a + b, 0), 640, "every job was sent once");
    assert.ok(sizes.length <= 640 / 8, `${sizes.length} EnqueueBatch calls for 640 jobs: ${sizes.join(",")}`);
  });

  test("a job the server refuses fails only its caller, named as for a single enqueue; the rest are enqueued", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    // Same tick: one batch. A lease of 0 ms passes the library and is refused by the server.
    const calls = [
      client.enqueue(queue, { n: 0 }),
      client.enqueue(queue, { n: 1 }, { leaseDurationMs: 0 }),
      client.enqueue(queue, { n: 2 }),
      client.enqueue("not a queue!", { n: 3 }),
      client.enqueue(queue, { n: 4 }),
    ];
    const settled = await Promise.allSettled(calls);
    const refused = (index: number): InvalidArgumentError => {
      const outcome = settled[index];
      assert.ok(outcome?.status === "rejected", `call ${index} was not refused`);
      assert.ok(outcome.reason instanceof InvalidArgumentError, String(outcome.reason));
      return outcome.reason;
    };
    assert.equal(refused(1).field, "lease_duration");
    assert.match(refused(1).message, /^lease_duration: /);
    assert.equal(refused(3).field, "queue");
    assert.equal(refused(3).reason, "INVALID_ARGUMENT");
    for (const index of [0, 2, 4]) {
      const outcome = settled[index];
      assert.ok(outcome?.status === "fulfilled", `call ${index}: ${outcome?.status === "rejected" ? String(outcome.reason) : ""}`);
      assert.deepEqual((await reader.getStatus(outcome.value.jobId)).payload, { n: index });
    }
    assert.equal(await queued(queue), 3);
    // The server names one job per refusal: five jobs, then four, then the three good ones.
    assert.deepEqual(recorder.batchSizes(), [5, 4, 3]);
  });

  test("a call aborted before its job was sent takes the job out of the batch", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    const controller = new AbortController();
    const kept = client.enqueue(queue, { n: 0 });
    const aborted = client.enqueue(queue, { n: 1 }, { signal: controller.signal });
    controller.abort(new Error("no longer wanted"));
    await assert.rejects(aborted, /no longer wanted/);
    const { jobId } = await kept;
    assert.deepEqual((await reader.getStatus(jobId)).payload, { n: 0 });
    assert.equal(await queued(queue), 1);
    assert.deepEqual(recorder.batchSizes(), [1]);
    const gone = new AbortController();
    gone.abort(new Error("already aborted"));
    await assert.rejects(client.enqueue(queue, {}, { signal: gone.signal }), /already aborted/);
    assert.deepEqual(recorder.batchSizes(), [1], "a call aborted from the start sends nothing");
  });

  test("a batch carries the earliest deadline of its callers", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    const before = Date.now();
    const calls = [client.enqueue(queue, {}, { timeoutMs: 60_000 }), client.enqueue(queue, {}, { timeoutMs: 20_000 })];
    const after = Date.now();
    await Promise.all(calls);
    const [call] = recorder.of("EnqueueBatch");
    assert.equal(call?.jobs, 2);
    const deadline = call.deadline instanceof Date ? call.deadline.getTime() : Number(call.deadline);
    assert.ok(deadline >= before + 20_000 && deadline <= after + 20_000, `deadline ${deadline - before} ms after the calls`);
  });

  test("a call whose deadline passed before its job was sent fails without sending it", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    const late = assert.rejects(client.enqueue(queue, {}, { timeoutMs: 0 }), DeadlineExceededError);
    await client.enqueue(queue, {});
    await late;
    assert.deepEqual(recorder.batchSizes(), [1]);
    assert.equal(await queued(queue), 1);
  });

  test("batches stay within maxJobs and maxBytes", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder, { batching: { maxJobs: 10, maxBytes: 1_000 } });
    const queue = uniqueQueue();
    await Promise.all(Array.from({ length: 25 }, (_, n) => client.enqueue(queue, { n })));
    assert.deepEqual(recorder.batchSizes(), [10, 10, 5]);
    recorder.clear();
    const text = "x".repeat(250); // about 280 bytes encoded: three fit in 1,000, four do not
    await Promise.all(Array.from({ length: 7 }, () => client.enqueue(queue, { text })));
    assert.deepEqual(recorder.batchSizes(), [3, 3, 1]);
    assert.equal(await queued(queue), 32);
  });

  test("flush resolves once every job enqueued before it is answered", async () => {
    const client = recordedClient(new CallRecorder(), { batching: { lingerMs: 60_000 } });
    const queue = uniqueQueue();
    let answered = 0;
    const first = Array.from({ length: 30 }, (_, n) => client.enqueue(queue, { n }).then(() => (answered += 1)));
    await client.flush();
    assert.equal(answered, 30);
    await Promise.all(first);
    await client.flush(); // nothing pending: resolves at once
    assert.equal(await queued(queue), 30);
  });

  test("close flushes first, then refuses new jobs", async () => {
    const client = new Client(server.target);
    const queue = uniqueQueue();
    const calls = Array.from({ length: 20 }, (_, n) => client.enqueue(queue, { n }));
    await client.close();
    const results = await Promise.all(calls);
    assert.equal(new Set(results.map((r) => r.jobId)).size, 20);
    assert.equal(await queued(queue), 20);
    await assert.rejects(client.enqueue(queue, {}), /closed/);
  });

  test("with batching off each enqueue is an Enqueue call of its own", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder, { batching: false });
    const queue = uniqueQueue();
    await Promise.all(Array.from({ length: 5 }, () => client.enqueue(queue, {})));
    assert.equal(recorder.of("Enqueue").length, 5);
    assert.equal(recorder.of("EnqueueBatch").length, 0);
  });

  test("bad batching settings are refused, naming the setting", () => {
    const field = (name: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === name;
    assert.throws(() => new Client(server.target, { batching: { maxJobs: 0 } }), field("batching.maxJobs"));
    assert.throws(() => new Client(server.target, { batching: { maxBytes: Number.NaN } }), field("batching.maxBytes"));
    assert.throws(() => new Client(server.target, { batching: { lingerMs: -1 } }), field("batching.lingerMs"));
  });
});
