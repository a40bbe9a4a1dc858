// Partitioned queues without a jobq server: the requests built from `partitionKey` (alone, in a
// batch, on the stream and in Enqueue calls), the CreateQueue request and its answer, the
// partition count read back by stats, and what the client refuses before sending anything.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { status as GrpcStatus, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";

import { createQueueRequest, enqueueRequest, queueStats } from "../convert.js";
import { Client, InvalidArgumentError, JobQueueError, type CreateQueueResult } from "../index.js";
import { QueueStats as ProtoQueueStats } from "../gen/jobqueue/v1/job.js";
import {
  CreateQueueRequest as ProtoCreateQueueRequest,
  EnqueueRequest as ProtoEnqueueRequest,
  type CreateQueueRequest,
  type CreateQueueResponse,
  type EnqueueBatchRequest,
  type EnqueueBatchResponse,
  type EnqueueRequest,
  type EnqueueResponse,
  type EnqueueStreamRequest,
  type EnqueueStreamResponse,
  type StatsRequest,
  type StatsResponse,
} from "../gen/jobqueue/v1/job_queue_service.js";
import { refusal } from "./helpers/auth-server.js";
import { FakeServer } from "./helpers/fake-server.js";
import { CallRecorder } from "./helpers/recorder.js";

const fieldIs = (field: string) => (error: unknown) => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.field, field);
  assert.equal(error.reason, "INVALID_ARGUMENT");
  return true;
};

describe("partitionKey in enqueue requests", () => {
  test("partitionKey maps to partition_key, in a batch too", () => {
    assert.equal(enqueueRequest({ queue: "q", partitionKey: "customer-7" }).partitionKey, "customer-7");
    assert.equal(enqueueRequest({ queue: "q", partitionKey: "customer-7", priority: "high" }, "requests[3].").partitionKey, "customer-7");
    // On the wire: field 21, read back by the generated decoder as the server reads it.
    const encoded = ProtoEnqueueRequest.encode(enqueueRequest({ queue: "q", partitionKey: "customer-8" })).finish();
    assert.equal(ProtoEnqueueRequest.decode(encoded).partitionKey, "customer-8");
  });

  test("without it the field is empty: the server picks the partition", () => {
    assert.equal(enqueueRequest({ queue: "q" }).partitionKey, "");
    const keyed = enqueueRequest({ queue: "q", groupKey: "g", uniqueKey: "u", idempotencyKey: "i" });
    assert.equal(keyed.partitionKey, "", "the other keys are not sent as a partition key");
    assert.equal(keyed.groupKey, "g");
  });

  test("it travels beside the group key, each in its own field", () => {
    const request = enqueueRequest({ queue: "q", groupKey: "acme", partitionKey: "acme-orders" });
    assert.equal(request.groupKey, "acme");
    assert.equal(request.partitionKey, "acme-orders");
  });

  test("its length bound (256 characters) is left to the server", () => {
    assert.equal(enqueueRequest({ queue: "q", partitionKey: "p".repeat(257) }).partitionKey.length, 257);
  });
});

describe("CreateQueue requests", () => {
  test("the queue and the partition count map to their fields", () => {
    assert.deepEqual(createQueueRequest("orders", 3), { queue: "orders", partitions: 3 });
    const wire = ProtoCreateQueueRequest.decode(ProtoCreateQueueRequest.encode(createQueueRequest("orders", 64)).finish());
    assert.deepEqual(wire, { queue: "orders", partitions: 64 });
  });

  test("a count the wire cannot carry is refused, naming the field", () => {
    for (const partitions of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, -(2 ** 31) - 1, "3" as unknown as number]) {
      assert.throws(() => createQueueRequest("orders", partitions), fieldIs("partitions"), String(partitions));
    }
  });

  test("the range (1 to 64; 0 means 1) and the queue's grammar are left to the server", () => {
    assert.equal(createQueueRequest("orders", 0).partitions, 0);
    assert.equal(createQueueRequest("orders", 65).partitions, 65);
    assert.equal(createQueueRequest("orders", -1).partitions, -1);
    assert.equal(createQueueRequest("bad queue", 2).queue, "bad queue");
  });
});

describe("partitions read back", () => {
  test("stats carry the queue's partition count", () => {
    const stats = queueStats(ProtoQueueStats.fromPartial({ queue: "q", queued: 30, partitions: 3 }));
    assert.equal(stats.partitions, 3);
    assert.equal(stats.queued, 30);
  });

  test("a server older than partitioned queues sends none: one partition", () => {
    assert.equal(queueStats(ProtoQueueStats.fromPartial({ queue: "q" })).partitions, 1);
  });
});

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;
type Stream = ServerDuplexStream<EnqueueStreamRequest, EnqueueStreamResponse>;

/**
 * A fake server that records enqueues and CreateQueue calls. CreateQueue keeps each queue's
 * partition count as the contract says (more adds, as many changes nothing, fewer refused).
 */
class Recorded {
  readonly batches: EnqueueRequest[][] = [];
  readonly streamed: EnqueueRequest[] = [];
  readonly single: EnqueueRequest[] = [];
  readonly created: CreateQueueRequest[] = [];
  private readonly queues = new Map<string, number>();

  methods(): Record<string, unknown> {
    const enqueue: Unary<EnqueueRequest, EnqueueResponse> = (call, callback) => {
      this.single.push(call.request);
      callback(null, { jobId: `q:${this.single.length}`, duplicate: false });
    };
    const enqueueBatch: Unary<EnqueueBatchRequest, EnqueueBatchResponse> = (call, callback) => {
      this.batches.push(call.request.requests);
      callback(null, { responses: call.request.requests.map((_, index) => ({ jobId: `q:${this.batches.length}-${index}`, duplicate: false })) });
    };
    const enqueueStream = (call: Stream): void => {
      call.on("data", (request: EnqueueStreamRequest) => {
        this.streamed.push(...request.requests);
        const responses = request.requests.map((_, index) => ({ jobId: `q:s${request.sequence}-${index}`, duplicate: false }));
        call.write({ sequence: request.sequence, responses, error: undefined });
      });
      call.on("end", () => call.end());
      call.on("error", () => undefined);
    };
    const createQueue: Unary<CreateQueueRequest, CreateQueueResponse> = (call, callback) => {
      this.created.push(call.request);
      const { queue } = call.request;
      const wanted = call.request.partitions === 0 ? 1 : call.request.partitions;
      const now = this.queues.get(queue);
      if (now !== undefined && wanted < now) {
        callback(refusal({ code: GrpcStatus.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field: "partitions" }));
        return;
      }
      this.queues.set(queue, wanted);
      callback(null, { queue, partitions: wanted, changed: wanted !== now });
    };
    const stats: Unary<StatsRequest, StatsResponse> = (call, callback) => {
      const queue = call.request.queue;
      callback(null, { queues: [ProtoQueueStats.fromPartial({ queue, partitions: this.queues.get(queue) ?? 0 })], nextPageToken: "" });
    };
    return { enqueue, enqueueBatch, enqueueStream, createQueue, stats };
  }
}

/** A recording fake server and a client of it, both closed after `body`. */
async function withServer(
  body: (client: Client, server: Recorded, calls: CallRecorder) => Promise<void>,
  options: { batching?: false } = {},
): Promise<void> {
  const recorded = new Recorded();
  const server = await FakeServer.start(recorded.methods() as never);
  const calls = new CallRecorder();
  const client = new Client(server.target, { timeoutMs: 5_000, channelOptions: { interceptors: [calls.interceptor] }, ...options });
  try {
    await body(client, recorded, calls);
  } finally {
    await client.close();
    server.stop();
  }
}

describe("partitioned queues through the Client (scripted server)", { timeout: 60_000 }, () => {
  test("enqueue (gathered on the stream) and enqueueBatch send each job's partition key", async () => {
    await withServer(async (client, server) => {
      await Promise.all([client.enqueue("q", { n: 1 }, { partitionKey: "k1" }), client.enqueue("q", { n: 2 })]);
      assert.deepEqual(
        server.streamed.map((request) => request.partitionKey),
        ["k1", ""],
      );
      await client.enqueueBatch([
        { queue: "q", partitionKey: "a" },
        { queue: "q", partitionKey: "b", groupKey: "g" },
        { queue: "q" },
      ]);
      assert.deepEqual(
        server.batches[0]?.map((request) => request.partitionKey),
        ["a", "b", ""],
      );
    });
  });

  test("enqueue without batching sends the partition key in its Enqueue call", async () => {
    await withServer(
      async (client, server, calls) => {
        await client.enqueue("q", { n: 1 }, { partitionKey: "k1" });
        assert.deepEqual(
          server.single.map((request) => request.partitionKey),
          ["k1"],
        );
        assert.deepEqual(
          calls.calls.map((call) => call.method),
          ["Enqueue"],
        );
      },
      { batching: false },
    );
  });

  test("createQueue resolves to the queue as it is now; fewer partitions is an InvalidArgumentError", async () => {
    await withServer(async (client, server) => {
      const created: CreateQueueResult = await client.createQueue("orders", 3);
      assert.deepEqual(created, { queue: "orders", partitions: 3, changed: true });
      assert.deepEqual(await client.createQueue("orders", 3), { queue: "orders", partitions: 3, changed: false });
      assert.deepEqual(await client.createQueue("orders", 5), { queue: "orders", partitions: 5, changed: true });
      await assert.rejects(client.createQueue("orders", 2), fieldIs("partitions"));
      assert.deepEqual(
        server.created.map((request) => [request.queue, request.partitions]),
        [
          ["orders", 3],
          ["orders", 3],
          ["orders", 5],
          ["orders", 2],
        ],
      );
      const [stats] = await client.stats("orders");
      assert.equal(stats?.partitions, 5);
    });
  });

  test("a partition count the wire cannot carry is refused before sending", async () => {
    await withServer(async (client, server, calls) => {
      await assert.rejects(client.createQueue("orders", 2.5), fieldIs("partitions"));
      await assert.rejects(client.createQueue("orders", 2 ** 40), fieldIs("partitions"));
      assert.deepEqual(calls.calls, [], "no call was made");
      assert.equal(server.created.length, 0);
    });
  });

  test("a server without CreateQueue refuses it with UNIMPLEMENTED", async () => {
    const server = await FakeServer.start({});
    const client = new Client(server.target, { timeoutMs: 5_000 });
    try {
      await assert.rejects(client.createQueue("orders", 3), (error: unknown) => {
        assert.ok(error instanceof JobQueueError, String(error));
        assert.equal(error.code, GrpcStatus.UNIMPLEMENTED);
        return true;
      });
    } finally {
      await client.close();
      server.stop();
    }
  });
});
