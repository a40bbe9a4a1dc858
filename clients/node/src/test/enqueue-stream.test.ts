// The EnqueueStream the batcher sends on, against real servers: a caller whose deadline
// passes unanswered (the server made slow by pausing its Valkey's writes), a stream that
// breaks with batches unanswered, and a server without EnqueueStream (an in-test gRPC server
// that forwards only Enqueue and EnqueueBatch to the real one), which gets EnqueueBatch calls.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Metadata, Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServiceError } from "@grpc/grpc-js";

import { serviceClient } from "../channel.js";
import {
  JobQueueServiceService,
  type EnqueueBatchRequest,
  type EnqueueBatchResponse,
  type EnqueueRequest,
  type EnqueueResponse,
  type JobQueueServiceClient,
} from "../gen/jobqueue/v1/job_queue_service.js";
import {
  Client,
  DeadlineExceededError,
  InvalidArgumentError,
  JobQueueError,
  type ClientOptions,
} from "../index.js";
import { CallRecorder } from "./helpers/recorder.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { TestValkey, valkeyBinary } from "./helpers/valkey.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const binary = valkeyBinary();
const skip = serverSkipReason();
const skipPaused = skip ?? (binary === undefined ? "no valkey-server binary (set JOBQ_VALKEY_BIN)" : undefined);
if (skipPaused !== undefined) console.log(`skipping some enqueue stream tests: ${skipPaused}`);

function isDeadline(error: unknown): boolean {
  assert.ok(error instanceof DeadlineExceededError, `not a DeadlineExceededError: ${String(error)}`);
  assert.match(error.message, /may be enqueued/);
  return true;
}

describe("the enqueue stream on a slow or stopped server", { skip: skipPaused, timeout: 60_000 }, () => {
  let valkey: TestValkey;
  let server: TestServer;
  let reader: Client;
  const opened: Client[] = [];

  function recordedClient(recorder: CallRecorder, options: ClientOptions = {}): Client {
    const client = new Client(server.target, { ...options, channelOptions: { interceptors: [recorder.interceptor] } });
    opened.push(client);
    return client;
  }

  before(async () => {
    valkey = await TestValkey.start(binary as string, {});
    server = await TestServer.start({ redisUrl: valkey.url });
    reader = await Client.connect(server.target, { batching: false });
  });

  after(async () => {
    await Promise.all(opened.map((client) => client.close()));
    await reader?.close();
    await server?.stop();
    await valkey?.stop();
  });

  test("callers whose deadline passes unanswered get DeadlineExceededError while the stream goes on", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    await client.enqueue(queue, { n: 0 }); // the stream is open
    // The server's next write waits 700 ms (well inside its Redis timeout, 3 s).
    assert.equal(await valkey.command("CLIENT", "PAUSE", "700", "WRITE"), "+OK");
    const started = Date.now();
    // Same tick: one batch, with the earlier of the two deadlines.
    const short = client.enqueue(queue, { n: 1 }, { timeoutMs: 200 });
    const long = client.enqueue(queue, { n: 2 }, { timeoutMs: 60_000 });
    await assert.rejects(short, isDeadline);
    await assert.rejects(long, isDeadline);
    const waited = Date.now() - started;
    assert.ok(waited >= 190 && waited < 650, `the deadline came after ${waited} ms`);

    const later = await client.enqueue(queue, { n: 3 }); // answered once Redis writes again
    assert.deepEqual((await reader.getStatus(later.jobId)).payload, { n: 3 });
    assert.deepEqual(recorder.started, ["EnqueueStream"], "the same stream throughout");
    assert.deepEqual(recorder.streamSizes(), [1, 2, 1]);
    // The late batch was written after all: "may be enqueued" is what its callers were told.
    assert.equal((await reader.stats(queue))[0]?.queued, 4);
  });

  test("when the stream breaks, its unanswered callers get its error; the next batch opens a new stream", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    await client.enqueue(queue, { n: 0 });
    // Longer than the server's shutdown grace (1 s in these tests): it cannot answer in time.
    await valkey.command("CLIENT", "PAUSE", "2500", "WRITE");
    const unanswered = client.enqueue(queue, { n: 1 });
    await waitUntil(() => recorder.streamSizes().length === 2, "the second batch on the stream");
    const stopped = server.kill();
    await assert.rejects(unanswered, (error: unknown) => {
      assert.ok(error instanceof JobQueueError, String(error));
      assert.ok(!(error instanceof DeadlineExceededError), "the stream's error, not a deadline");
      return true;
    });
    await stopped;
    await server.restart();
    const after = await waitUntil(
      () => client.enqueue(queue, { n: 2 }, { timeoutMs: 2_000 }).catch(() => undefined),
      "an enqueue after the restart",
      20_000,
    );
    assert.deepEqual((await reader.getStatus(after.jobId)).payload, { n: 2 });
    assert.ok(recorder.startedOf("EnqueueStream") >= 2, "a new stream after the break");
    assert.equal(recorder.of("EnqueueBatch").length, 0);
  });
});

type Forward<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/**
 * A server as old as EnqueueStream's absence: Enqueue and EnqueueBatch forwarded to `target`
 * (errors with their details), every other method UNIMPLEMENTED.
 */
class WithoutStream {
  private constructor(
    private readonly server: Server,
    private readonly upstream: JobQueueServiceClient,
    readonly target: string,
  ) {}

  static async start(target: string): Promise<WithoutStream> {
    const upstream = serviceClient(target);
    const forward =
      <Req, Res>(
        method: (request: Req, metadata: Metadata, options: { deadline: Date | number }, callback: (e: ServiceError | null, r: Res) => void) => unknown,
      ): Forward<Req, Res> =>
      (call, callback) =>
        method.call(upstream, call.request, new Metadata(), { deadline: call.getDeadline() }, (error, response) =>
          error === null ? callback(null, response) : callback(error),
        );
    const server = new Server();
    server.addService(JobQueueServiceService, {
      enqueue: forward<EnqueueRequest, EnqueueResponse>(upstream.enqueue),
      enqueueBatch: forward<EnqueueBatchRequest, EnqueueBatchResponse>(upstream.enqueueBatch),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    return new WithoutStream(server, upstream, `127.0.0.1:${port}`);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.upstream.close();
  }
}

describe("a server without EnqueueStream", { skip, timeout: 60_000 }, () => {
  let server: TestServer;
  let old: WithoutStream;
  let reader: Client;
  const opened: Client[] = [];

  function recordedClient(recorder: CallRecorder, options: ClientOptions = {}): Client {
    const client = new Client(old.target, { ...options, channelOptions: { interceptors: [recorder.interceptor] } });
    opened.push(client);
    return client;
  }

  before(async () => {
    server = await TestServer.start();
    old = await WithoutStream.start(server.target);
    reader = await Client.connect(server.target, { batching: false });
  });

  after(async () => {
    await Promise.all(opened.map((client) => client.close()));
    await reader?.close();
    await old?.stop();
    await server?.stop();
  });

  test("gets EnqueueBatch calls of up to maxJobs after one UNIMPLEMENTED stream, and each caller its own id", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    const queue = uniqueQueue();
    // Sent on the stream first (two full messages); UNIMPLEMENTED sends them again as calls.
    const first = await Promise.all(Array.from({ length: 64 }, (_, n) => client.enqueue(queue, { n })));
    assert.equal(recorder.startedOf("EnqueueStream"), 1);
    assert.deepEqual(recorder.batchSizes(), [32, 32]);
    recorder.clear();
    // Then calls only, full at maxJobs (1,000), not the stream's 32.
    const second = await Promise.all(Array.from({ length: 100 }, (_, n) => client.enqueue(queue, { n: 64 + n })));
    assert.equal(recorder.startedOf("EnqueueStream"), 0, "the stream is not tried again");
    assert.deepEqual(recorder.batchSizes(), [100]);
    const results = [...first, ...second];
    assert.equal(new Set(results.map((r) => r.jobId)).size, 164);
    for (const n of [0, 63, 64, 163]) {
      assert.deepEqual((await reader.getStatus((results[n] as (typeof results)[number]).jobId)).payload, { n });
    }
    assert.equal((await reader.stats(queue))[0]?.queued, 164);
  });

  test("a refused job fails only its caller, as on the stream", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    await client.enqueue(uniqueQueue(), {}); // the stream was tried: calls from now on
    recorder.clear();
    const queue = uniqueQueue();
    const settled = await Promise.allSettled([
      client.enqueue(queue, { n: 0 }),
      client.enqueue("not a queue!", { n: 1 }),
      client.enqueue(queue, { n: 2 }),
    ]);
    const refused = settled[1];
    assert.ok(refused?.status === "rejected" && refused.reason instanceof InvalidArgumentError, String(refused));
    assert.equal(refused.reason.field, "queue");
    assert.deepEqual(settled.map((outcome) => outcome.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.deepEqual(recorder.batchSizes(), [3, 2]);
  });

  test("a batch call carries the earliest deadline of its callers", async () => {
    const recorder = new CallRecorder();
    const client = recordedClient(recorder);
    await client.enqueue(uniqueQueue(), {});
    recorder.clear();
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
});
