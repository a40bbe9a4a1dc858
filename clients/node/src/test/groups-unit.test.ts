// Job groups without a jobq server: the requests built from `groupKey` (alone and in a batch),
// the group limits sent by setQueueLimits and read back by stats, the jobs read back, and what
// the client refuses before sending anything.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";

import { enqueueRequest, job, queueLimits, queueLimitsMessage, queueStats } from "../convert.js";
import { Client, InvalidArgumentError, type QueueLimits } from "../index.js";
import {
  Job as ProtoJob,
  JobState as ProtoJobState,
  QueueLimits as ProtoQueueLimits,
  QueueStats as ProtoQueueStats,
} from "../gen/jobqueue/v1/job.js";
import {
  EnqueueRequest as ProtoEnqueueRequest,
  type EnqueueBatchRequest,
  type EnqueueBatchResponse,
  type EnqueueRequest,
  type EnqueueStreamRequest,
  type EnqueueStreamResponse,
  type GetStatusRequest,
  type GetStatusResponse,
  type SetQueueLimitsRequest,
  type StatsRequest,
  type StatsResponse,
} from "../gen/jobqueue/v1/job_queue_service.js";
import { FakeServer } from "./helpers/fake-server.js";
import { CallRecorder } from "./helpers/recorder.js";

const fieldIs = (field: string) => (error: unknown) => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.field, field);
  assert.ok(error.message.startsWith(`${field}: `), error.message);
  return true;
};

/** Every limit 0: what an omitted one is sent as. */
const NONE: QueueLimits = { ratePerSecond: 0, burst: 0, maxActive: 0, groupRatePerSecond: 0, groupBurst: 0, groupMaxActive: 0 };

describe("groupKey in enqueue requests", () => {
  test("groupKey maps to group_key, in a batch too", () => {
    assert.equal(enqueueRequest({ queue: "q", groupKey: "acme" }).groupKey, "acme");
    assert.equal(enqueueRequest({ queue: "q", groupKey: "acme", priority: "high" }, "requests[3].").groupKey, "acme");
    // On the wire: field 20, read back by the generated decoder as the server reads it.
    const decoded = ProtoEnqueueRequest.decode(ProtoEnqueueRequest.encode(enqueueRequest({ queue: "q", groupKey: "globex" })).finish());
    assert.equal(decoded.groupKey, "globex");
  });

  test("without it the field is empty: no group", () => {
    assert.equal(enqueueRequest({ queue: "q" }).groupKey, "");
    assert.equal(enqueueRequest({ queue: "q", uniqueKey: "u" }).groupKey, "", "the unique key is not a group");
  });

  test("its length bound (256 characters) is left to the server", () => {
    assert.equal(enqueueRequest({ queue: "q", groupKey: "g".repeat(257) }).groupKey.length, 257);
  });
});

describe("groups read back", () => {
  test("a job's group", () => {
    const read = job(ProtoJob.fromPartial({ id: "q:x", queue: "q", state: ProtoJobState.JOB_STATE_QUEUED, groupKey: "acme" }));
    assert.equal(read.groupKey, "acme");
  });

  test("a job without a group has no groupKey", () => {
    const read = job(ProtoJob.fromPartial({ id: "q:x", queue: "q", state: ProtoJobState.JOB_STATE_QUEUED }));
    assert.equal(read.groupKey, undefined);
    assert.ok(!("groupKey" in read), "unset, not a key holding undefined");
  });

  test("stats read the group limits back with the others", () => {
    const limits = { ratePerSecond: 10, burst: 20, maxActive: 30, groupRatePerSecond: 0.5, groupBurst: 2, groupMaxActive: 1 };
    const stats = queueStats(ProtoQueueStats.fromPartial({ queue: "q", queued: 3, limits }));
    assert.deepEqual(stats.limits, limits);
    assert.deepEqual(queueLimits(ProtoQueueLimits.fromPartial({ groupMaxActive: 1 })), { ...NONE, groupMaxActive: 1 });
    // A server older than groups sends none of them: they read as 0, no limit.
    assert.deepEqual(queueLimits(ProtoQueueLimits.fromPartial({ maxActive: 4 })), { ...NONE, maxActive: 4 });
  });
});

describe("group limits sent", () => {
  test("each maps to its field; an omitted one is 0", () => {
    assert.deepEqual(queueLimitsMessage({ groupMaxActive: 1 }), { ...NONE, groupMaxActive: 1 });
    assert.deepEqual(queueLimitsMessage({ groupRatePerSecond: 2.5, groupBurst: 5 }), { ...NONE, groupRatePerSecond: 2.5, groupBurst: 5 });
    const all = { ratePerSecond: 50, burst: 100, maxActive: 10, groupRatePerSecond: 2, groupBurst: 4, groupMaxActive: 1 };
    assert.deepEqual(queueLimitsMessage(all), all);
  });

  test("they round-trip: sent, encoded, decoded and read back unchanged", () => {
    const limits = { ratePerSecond: 0, burst: 0, maxActive: 0, groupRatePerSecond: 12.25, groupBurst: 7, groupMaxActive: 3 };
    const wire = ProtoQueueLimits.decode(ProtoQueueLimits.encode(queueLimitsMessage(limits)).finish());
    assert.deepEqual(queueLimits(wire), limits);
  });

  test("what the wire cannot carry is refused, naming the field, as for the queue's limits", () => {
    assert.throws(() => queueLimitsMessage({ groupBurst: 1.5 }), fieldIs("limits.group_burst"));
    assert.throws(() => queueLimitsMessage({ groupMaxActive: 2 ** 31 }), fieldIs("limits.group_max_active"));
    assert.throws(() => queueLimitsMessage({ groupMaxActive: Number.NaN }), fieldIs("limits.group_max_active"));
    assert.throws(() => queueLimitsMessage({ groupBurst: -(2 ** 31) - 1 }), fieldIs("limits.group_burst"));
    assert.throws(() => queueLimitsMessage({ groupRatePerSecond: "5" as unknown as number }), fieldIs("limits.group_rate_per_second"));
    assert.throws(() => queueLimitsMessage({ groupMaxActive: "1" as unknown as number }), fieldIs("limits.group_max_active"));
  });

  test("ranges, and a group burst without a group rate, are left to the server", () => {
    assert.deepEqual(queueLimitsMessage({ groupMaxActive: -1 }), { ...NONE, groupMaxActive: -1 });
    assert.deepEqual(queueLimitsMessage({ groupRatePerSecond: -0.5 }), { ...NONE, groupRatePerSecond: -0.5 });
    assert.deepEqual(queueLimitsMessage({ groupBurst: 5 }), { ...NONE, groupBurst: 5 });
  });
});

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;
type Stream = ServerDuplexStream<EnqueueStreamRequest, EnqueueStreamResponse>;

/** A fake server that records enqueues and limits, and answers with grouped jobs and limits. */
class Recorded {
  readonly batches: EnqueueRequest[][] = [];
  readonly streamed: EnqueueRequest[] = [];
  readonly limits: SetQueueLimitsRequest[] = [];

  methods(): Record<string, unknown> {
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
    const setQueueLimits: Unary<SetQueueLimitsRequest, object> = (call, callback) => {
      this.limits.push(call.request);
      callback(null, {});
    };
    const getStatus: Unary<GetStatusRequest, GetStatusResponse> = (call, callback) => {
      const found = ProtoJob.fromPartial({ id: call.request.jobId, queue: "q", state: ProtoJobState.JOB_STATE_ACTIVE, groupKey: "acme" });
      callback(null, { job: found });
    };
    const stats: Unary<StatsRequest, StatsResponse> = (_call, callback) => {
      const limits = ProtoQueueLimits.fromPartial({ groupRatePerSecond: 2, groupBurst: 3, groupMaxActive: 1 });
      callback(null, { queues: [ProtoQueueStats.fromPartial({ queue: "q", limits })], nextPageToken: "" });
    };
    return { enqueueBatch, enqueueStream, setQueueLimits, getStatus, stats };
  }
}

/** A recording fake server and a client of it, both closed after `body`. */
async function withServer(body: (client: Client, server: Recorded, calls: CallRecorder) => Promise<void>): Promise<void> {
  const recorded = new Recorded();
  const server = await FakeServer.start(recorded.methods() as never);
  const calls = new CallRecorder();
  const client = new Client(server.target, { timeoutMs: 5_000, channelOptions: { interceptors: [calls.interceptor] } });
  try {
    await body(client, recorded, calls);
  } finally {
    await client.close();
    server.stop();
  }
}

describe("groups through the Client (scripted server)", { timeout: 60_000 }, () => {
  test("enqueue (gathered on the stream) and enqueueBatch send each job's group", async () => {
    await withServer(async (client, server) => {
      await Promise.all([client.enqueue("q", { n: 1 }, { groupKey: "acme" }), client.enqueue("q", { n: 2 })]);
      assert.deepEqual(
        server.streamed.map((request) => request.groupKey),
        ["acme", ""],
      );
      await client.enqueueBatch([
        { queue: "q", groupKey: "a" },
        { queue: "q", groupKey: "b", priority: "high" },
        { queue: "q" },
      ]);
      assert.deepEqual(
        server.batches[0]?.map((request) => request.groupKey),
        ["a", "b", ""],
      );
    });
  });

  test("setQueueLimits sends the group limits (omitted ones 0); stats and getStatus read groups back", async () => {
    await withServer(async (client, server) => {
      await client.setQueueLimits("q", { groupMaxActive: 1 });
      await client.setQueueLimits("q", { maxActive: 10, groupRatePerSecond: 2.5, groupBurst: 5 });
      assert.deepEqual(
        server.limits.map((request) => [request.queue, request.limits]),
        [
          ["q", { ...NONE, groupMaxActive: 1 }],
          ["q", { ...NONE, maxActive: 10, groupRatePerSecond: 2.5, groupBurst: 5 }],
        ],
      );
      const [stats] = await client.stats("q");
      assert.deepEqual(stats?.limits, { ...NONE, groupRatePerSecond: 2, groupBurst: 3, groupMaxActive: 1 });
      assert.equal((await client.getStatus("q:1")).groupKey, "acme");
    });
  });

  test("a group limit the wire cannot carry is refused before sending", async () => {
    await withServer(async (client, server, calls) => {
      await assert.rejects(client.setQueueLimits("q", { groupMaxActive: 0.5 }), fieldIs("limits.group_max_active"));
      await assert.rejects(client.setQueueLimits("q", { groupBurst: 2 ** 40 }), fieldIs("limits.group_burst"));
      await assert.rejects(
        client.setQueueLimits("q", { groupRatePerSecond: "2" as unknown as number }),
        fieldIs("limits.group_rate_per_second"),
      );
      assert.deepEqual(calls.calls, [], "no call was made");
      assert.equal(server.limits.length, 0);
    });
  });
});
