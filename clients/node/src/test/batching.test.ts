// Producer batching against a real server: concurrent enqueue() calls share messages on one
// EnqueueStream, and each caller still gets its own id or its own error (docs/clients.md).
// enqueue-stream.test.ts has the stream's deadlines, breaks and the fallback to EnqueueBatch.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { Client, DeadlineExceededError, InvalidArgumentError, type ClientOptions, type EnqueueResult } from "../index.js";
import { CallRecorder } from "./helpers/recorder.js";
import { PACKAGE_ROOT, TestServer, serverSkipReason } from "./helpers/server.js";
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

  test("64 concurrent callers get distinct ids for jobs that exist, in stream messages of at most 32 jobs", async () => {
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
    assert.deepEqual(recorder.started, ["EnqueueStream"], "one stream, and no call of any other RPC");
    const sizes = recorder.streamSizes();
    assert.equal(sizes.reduce((a, b) => a + b, 0), 640, "every job was sent once");
    assert.ok(sizes.every((jobs) => jobs <= 32), `a message over 32 jobs: ${sizes.join(",")}`);
    assert.ok(sizes.length <= 640 / 8, `${sizes.length} messages for 640 jobs: ${sizes.join(",")}`);
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
    // The server names one job per refusal: five jobs, then four, then the three good ones,
    // each a message on the same stream (a refusal does not end it).
    assert.deepEqual(recorder.streamSizes(), [5, 4, 3]);
    assert.deepEqual(recorder.started, ["EnqueueStream"]);
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
    assert.deepEqual(recorder.streamSizes(), [1]);
    const gone = new AbortController();
    gone.abort(new Error("already aborted"));
    await assert.rejects(client.enqueue(queue, {}, { signal: gone.signal }), /already aborted/);
    assert.deepEqual(recorder.streamSizes(), [1], "a call aborted from the start sends nothing");
  });

  test("a call whose deadline passed before its job was sent fails without sending it", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    const late = assert.rejects(client.enqueue(queue, {}, { timeoutMs: 0 }), DeadlineExceededError);
    await client.enqueue(queue, {});
    await late;
    assert.deepEqual(recorder.streamSizes(), [1]);
    assert.equal(await queued(queue), 1);
  });

  test("on the stream a batch is full at 32 jobs, and goes at once beside the ones in flight", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder); // maxJobs 1,000: the stream's 32 is the lower
    const queue = uniqueQueue();
    const results = await Promise.all(Array.from({ length: 100 }, (_, n) => client.enqueue(queue, { n })));
    assert.deepEqual(recorder.streamSizes(), [32, 32, 32, 4]);
    assert.equal(new Set(results.map((r) => r.jobId)).size, 100);
    assert.equal(await queued(queue), 100);
  });

  test("batches stay within maxJobs and maxBytes", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder, { batching: { maxJobs: 10, maxBytes: 1_000 } });
    const queue = uniqueQueue();
    await Promise.all(Array.from({ length: 25 }, (_, n) => client.enqueue(queue, { n })));
    assert.deepEqual(recorder.streamSizes(), [10, 10, 5]);
    recorder.clear();
    const text = "x".repeat(250); // about 280 bytes encoded: three fit in 1,000, four do not
    await Promise.all(Array.from({ length: 7 }, () => client.enqueue(queue, { text })));
    assert.deepEqual(recorder.streamSizes(), [3, 3, 1]);
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

  test("close flushes first, ends the stream, then refuses new jobs", async () => {
    const client = new Client(server.target, { timeoutMs: 30_000 });
    const queue = uniqueQueue();
    const calls = Array.from({ length: 20 }, (_, n) => client.enqueue(queue, { n }));
    const started = Date.now();
    await client.close();
    // close waits for the server to end the stream after its half-close, at most timeoutMs.
    assert.ok(Date.now() - started < 5_000, `close took ${Date.now() - started} ms: the server did not end the stream`);
    const results = await Promise.all(calls);
    assert.equal(new Set(results.map((r) => r.jobId)).size, 20);
    assert.equal(await queued(queue), 20);
    await assert.rejects(client.enqueue(queue, {}), /closed/);
  });

  test("a program that never closes its client still exits: an idle stream is ended", async () => {
    // An open call holds Node's event loop; unary calls let such a program exit, so must the stream.
    const index = pathToFileURL(join(PACKAGE_ROOT, "dist", "index.js")).href;
    const program = [
      `const { Client } = await import(${JSON.stringify(index)});`,
      `const client = new Client(${JSON.stringify(server.target)});`,
      `console.log((await client.enqueue(${JSON.stringify(uniqueQueue())}, {})).jobId);`,
    ].join("\n");
    const started = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", program], { timeout: 15_000 });
    const took = Date.now() - started;
    assert.ok((await reader.getStatus(stdout.trim())).id === stdout.trim());
    assert.ok(took < 10_000, `the program took ${took} ms to exit`);
  });

  test("with batching off each enqueue is an Enqueue call of its own", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder, { batching: false });
    const queue = uniqueQueue();
    await Promise.all(Array.from({ length: 5 }, () => client.enqueue(queue, {})));
    assert.equal(recorder.of("Enqueue").length, 5);
    assert.equal(recorder.of("EnqueueBatch").length, 0);
    assert.equal(recorder.startedOf("EnqueueStream"), 0);
  });

  test("bad batching settings are refused, naming the setting", () => {
    const field = (name: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === name;
    assert.throws(() => new Client(server.target, { batching: { maxJobs: 0 } }), field("batching.maxJobs"));
    assert.throws(() => new Client(server.target, { batching: { maxBytes: Number.NaN } }), field("batching.maxBytes"));
    assert.throws(() => new Client(server.target, { batching: { lingerMs: -1 } }), field("batching.lingerMs"));
  });
});
