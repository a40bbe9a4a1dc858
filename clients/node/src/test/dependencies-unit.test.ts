// Job dependencies without a jobq server: the requests built from the options (dependsOn,
// onDependencyFailure, ref, dependsOnRefs), the jobs and stats read back, the "waiting"
// state everywhere states are mapped, and what the client refuses before sending anything.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { status as GrpcStatus, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";

import { enqueueRequest, job, jobState, queueStats, toDependencyFailurePolicy, toJobState, usesRefs } from "../convert.js";
import { Client, InvalidArgumentError, MAX_BATCH, NotFoundError, isTerminal, type DependencyFailurePolicy, type Job, type JobSpec } from "../index.js";
import { Status } from "../gen/google/rpc/status.js";
import {
  DependencyFailurePolicy as ProtoPolicy,
  Job as ProtoJob,
  JobState as ProtoJobState,
  QueueStats as ProtoQueueStats,
} from "../gen/jobqueue/v1/job.js";
import type {
  EnqueueBatchRequest,
  EnqueueBatchResponse,
  EnqueueRequest,
  EnqueueStreamRequest,
  EnqueueStreamResponse,
  GetStatusRequest,
  GetStatusResponse,
  ListJobsRequest,
  ListJobsResponse,
  StatsRequest,
  StatsResponse,
} from "../gen/jobqueue/v1/job_queue_service.js";
import { refusal } from "./helpers/auth-server.js";
import { FakeServer } from "./helpers/fake-server.js";
import { CallRecorder } from "./helpers/recorder.js";
import { freePort } from "./helpers/server.js";

const PARENT = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV";
const OTHER_PARENT = "other:01ARZ3NDEKTSV4RRFFQ69G5FAW";

const fieldIs = (field: string) => (error: unknown) => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.field, field);
  assert.ok(error.message.startsWith(`${field}: `), error.message);
  return true;
};

describe("dependency options in enqueue requests", () => {
  test("dependsOn, onDependencyFailure, ref and dependsOnRefs map to their fields", () => {
    const dependsOn = [PARENT, OTHER_PARENT];
    const request = enqueueRequest({
      queue: "q",
      dependsOn,
      onDependencyFailure: "dead_letter",
      ref: "c",
      dependsOnRefs: ["a", "b"],
    });
    assert.deepEqual(request.dependsOn, [PARENT, OTHER_PARENT]);
    assert.notEqual(request.dependsOn, dependsOn, "a copy: the caller's array is not kept");
    assert.equal(request.onDependencyFailure, ProtoPolicy.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER);
    assert.equal(request.ref, "c");
    assert.deepEqual(request.dependsOnRefs, ["a", "b"]);
    assert.ok(usesRefs(request));
  });

  test("without them the fields are empty and the policy unset (the server's default, cancel)", () => {
    const request = enqueueRequest({ queue: "q" });
    assert.deepEqual(request.dependsOn, []);
    assert.equal(request.onDependencyFailure, ProtoPolicy.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED);
    assert.equal(request.ref, "");
    assert.deepEqual(request.dependsOnRefs, []);
    assert.ok(!usesRefs(request));
    assert.ok(!usesRefs(enqueueRequest({ queue: "q", dependsOn: [PARENT] })), "ids are not refs");
    assert.ok(usesRefs(enqueueRequest({ queue: "q", ref: "a" })));
    assert.ok(usesRefs(enqueueRequest({ queue: "q", dependsOnRefs: ["a"] })));
  });

  test("each policy maps to the contract's value", () => {
    const policies: [DependencyFailurePolicy, ProtoPolicy][] = [
      ["cancel", ProtoPolicy.DEPENDENCY_FAILURE_POLICY_CANCEL],
      ["dead_letter", ProtoPolicy.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER],
      ["run_anyway", ProtoPolicy.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY],
    ];
    for (const [name, proto] of policies) {
      assert.equal(toDependencyFailurePolicy(name), proto);
      assert.equal(enqueueRequest({ queue: "q", dependsOn: [PARENT], onDependencyFailure: name }).onDependencyFailure, proto);
    }
    assert.equal(toDependencyFailurePolicy(undefined), ProtoPolicy.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED);
  });

  test("what the wire cannot carry is refused, naming the field (inside a batch too)", () => {
    for (const policy of ["CANCEL", "dead-letter", "", "constructor", "toString"]) {
      const options = { queue: "q", onDependencyFailure: policy as DependencyFailurePolicy };
      assert.throws(() => enqueueRequest(options), fieldIs("on_dependency_failure"));
      assert.throws(() => enqueueRequest(options, "requests[3]."), fieldIs("requests[3].on_dependency_failure"));
    }
    // A string would go as one id (or ref) per character.
    assert.throws(() => enqueueRequest({ queue: "q", dependsOn: PARENT as unknown as string[] }), fieldIs("depends_on"));
    assert.throws(
      () => enqueueRequest({ queue: "q", dependsOnRefs: "ab" as unknown as string[] }, "requests[1]."),
      fieldIs("requests[1].depends_on_refs"),
    );
    assert.throws(
      () => enqueueRequest({ queue: "q", dependsOn: [PARENT, 7 as unknown as string] }, "requests[2]."),
      fieldIs("requests[2].depends_on[1]"),
    );
    assert.throws(() => enqueueRequest({ queue: "q", dependsOnRefs: [null as unknown as string] }), fieldIs("depends_on_refs[0]"));
  });

  test("the ids' grammar and number are left to the server", () => {
    const many = Array.from({ length: 1_001 }, () => "not an id");
    assert.equal(enqueueRequest({ queue: "q", dependsOn: many }).dependsOn.length, 1_001);
  });
});

describe("jobs, stats and states read back", () => {
  test("a waiting job's dependencies and policy", () => {
    const read = job(
      ProtoJob.fromPartial({
        id: "q:child",
        queue: "q",
        state: ProtoJobState.JOB_STATE_WAITING,
        dependsOn: [PARENT, OTHER_PARENT],
        onDependencyFailure: ProtoPolicy.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
      }),
    );
    assert.equal(read.state, "waiting");
    assert.deepEqual(read.dependsOn, [PARENT, OTHER_PARENT]);
    assert.equal(read.onDependencyFailure, "run_anyway");
    const policyOf = (onDependencyFailure: ProtoPolicy) =>
      job(ProtoJob.fromPartial({ state: ProtoJobState.JOB_STATE_QUEUED, dependsOn: [PARENT], onDependencyFailure })).onDependencyFailure;
    assert.equal(policyOf(ProtoPolicy.DEPENDENCY_FAILURE_POLICY_CANCEL), "cancel");
    assert.equal(policyOf(ProtoPolicy.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER), "dead_letter");
  });

  test("a job without dependencies has an empty list and no policy", () => {
    const read = job(ProtoJob.fromPartial({ id: "q:x", queue: "q", state: ProtoJobState.JOB_STATE_QUEUED }));
    assert.deepEqual(read.dependsOn, []);
    assert.equal(read.onDependencyFailure, undefined);
    assert.ok(!("onDependencyFailure" in read), "unset, not a key holding undefined");
  });

  test("a policy this library does not know is an error, as an unknown state is", () => {
    const message = ProtoJob.fromPartial({ state: ProtoJobState.JOB_STATE_WAITING, dependsOn: [PARENT], onDependencyFailure: 9 as ProtoPolicy });
    assert.throws(() => job(message), /unknown dependency failure policy 9/);
  });

  test("stats count waiting jobs", () => {
    const stats = queueStats(ProtoQueueStats.fromPartial({ queue: "q", waiting: 4, queued: 1 }));
    assert.equal(stats.waiting, 4);
    assert.equal(stats.queued, 1);
    assert.equal(queueStats(ProtoQueueStats.fromPartial({ queue: "q" })).waiting, 0);
  });

  test('"waiting" maps both ways and is not terminal', () => {
    assert.equal(jobState(ProtoJobState.JOB_STATE_WAITING), "waiting");
    assert.equal(toJobState("waiting"), ProtoJobState.JOB_STATE_WAITING);
    assert.equal(isTerminal("waiting"), false);
    assert.throws(() => toJobState("sleeping" as "waiting"), (error: unknown) => {
      assert.ok(fieldIs("state")(error));
      assert.match((error as Error).message, /waiting/, "the states listed include waiting");
      return true;
    });
  });
});

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;
type Stream = ServerDuplexStream<EnqueueStreamRequest, EnqueueStreamResponse>;

/** A fake server that answers enqueues with made-up ids and records every request. */
class Recorded {
  readonly batches: EnqueueRequest[][] = [];
  readonly streamed: EnqueueRequest[] = [];
  readonly listed: ListJobsRequest[] = [];

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
    const listJobs: Unary<ListJobsRequest, ListJobsResponse> = (call, callback) => {
      this.listed.push(call.request);
      const waiting = ProtoJob.fromPartial({ id: "q:child", queue: "q", state: ProtoJobState.JOB_STATE_WAITING, dependsOn: [PARENT] });
      callback(null, { jobs: [waiting], nextPageToken: "", totalSize: 1 });
    };
    const getStatus: Unary<GetStatusRequest, GetStatusResponse> = (call, callback) => {
      const found = ProtoJob.fromPartial({
        id: call.request.jobId,
        queue: "q",
        state: ProtoJobState.JOB_STATE_QUEUED,
        dependsOn: [PARENT],
        onDependencyFailure: ProtoPolicy.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER,
      });
      callback(null, { job: found });
    };
    const stats: Unary<StatsRequest, StatsResponse> = (_call, callback) => {
      callback(null, { queues: [ProtoQueueStats.fromPartial({ queue: "q", waiting: 2 })], nextPageToken: "" });
    };
    return { enqueueBatch, enqueueStream, listJobs, getStatus, stats };
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

describe("dependencies through the Client (scripted server)", { timeout: 60_000 }, () => {
  test("enqueueBatch sends refs and ids as given, in one call", async () => {
    await withServer(async (client, server) => {
      const results = await client.enqueueBatch([
        { queue: "q", ref: "a" },
        { queue: "q", ref: "b", dependsOn: [PARENT] },
        { queue: "q", dependsOnRefs: ["a", "b"], onDependencyFailure: "run_anyway" },
      ]);
      assert.equal(results.length, 3);
      assert.equal(server.batches.length, 1);
      const [a, b, c] = server.batches[0] ?? [];
      assert.equal(a?.ref, "a");
      assert.deepEqual(a?.dependsOnRefs, []);
      assert.equal(b?.ref, "b");
      assert.deepEqual(b?.dependsOn, [PARENT]);
      assert.equal(c?.ref, "");
      assert.deepEqual(c?.dependsOnRefs, ["a", "b"]);
      assert.equal(c?.onDependencyFailure, ProtoPolicy.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY);
    });
  });

  test("a batch with refs larger than one call is refused before anything is sent", async () => {
    await withServer(async (client, server, calls) => {
      const jobs: JobSpec[] = Array.from({ length: MAX_BATCH + 1 }, () => ({ queue: "q" }));
      jobs[MAX_BATCH] = { queue: "q", dependsOnRefs: ["first"] };
      jobs[0] = { queue: "q", ref: "first" };
      await assert.rejects(client.enqueueBatch(jobs), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.field, "requests");
        assert.match(error.message, /refs/);
        assert.match(error.message, new RegExp(`${MAX_BATCH} jobs`));
        assert.match(error.message, new RegExp(`${MAX_BATCH + 1}`));
        assert.match(error.message, /nothing was sent/);
        return true;
      });
      // A ref alone is enough, as is a dependsOnRefs alone.
      const onlyRef: JobSpec[] = Array.from({ length: MAX_BATCH + 1 }, (_, i) => (i === 5 ? { queue: "q", ref: "x" } : { queue: "q" }));
      await assert.rejects(client.enqueueBatch(onlyRef), InvalidArgumentError);
      assert.deepEqual(calls.calls, [], "no call was made");
      assert.equal(server.batches.length, 0);

      // At the limit, or without refs, the batch goes: in one call, or split into calls.
      jobs.pop();
      jobs[MAX_BATCH - 1] = { queue: "q", dependsOnRefs: ["first"] };
      assert.equal((await client.enqueueBatch(jobs)).length, MAX_BATCH);
      const withIds: JobSpec[] = Array.from({ length: MAX_BATCH + 1 }, () => ({ queue: "q", dependsOn: [PARENT] }));
      assert.equal((await client.enqueueBatch(withIds)).length, MAX_BATCH + 1);
      assert.deepEqual(calls.batchSizes(), [MAX_BATCH, MAX_BATCH, 1]);
    });
  });

  test("enqueue sends dependsOn and the policy (gathered on the stream), and refuses refs before sending", async () => {
    await withServer(async (client, server, calls) => {
      await client.enqueue("q", { n: 1 }, { dependsOn: [PARENT, OTHER_PARENT], onDependencyFailure: "cancel" });
      const [sent] = server.streamed;
      assert.deepEqual(sent?.dependsOn, [PARENT, OTHER_PARENT]);
      assert.equal(sent?.onDependencyFailure, ProtoPolicy.DEPENDENCY_FAILURE_POLICY_CANCEL);
      calls.clear();
      // Refs are not in enqueue's options; a JavaScript caller may still pass them.
      await assert.rejects(client.enqueue("q", {}, { ref: "a" } as never), (error: unknown) => {
        assert.ok(fieldIs("ref")(error));
        assert.match((error as Error).message, /enqueueBatch/);
        return true;
      });
      await assert.rejects(client.enqueue("q", {}, { dependsOnRefs: ["a"] } as never), fieldIs("depends_on_refs"));
      await assert.rejects(client.enqueue("q", {}, { onDependencyFailure: "never" as DependencyFailurePolicy }), fieldIs("on_dependency_failure"));
      await client.flush();
      assert.deepEqual(calls.calls, [], "nothing was sent");
      assert.equal(server.streamed.length, 1);
    });
  });

  test("the same without batching: one Enqueue call", async () => {
    const recorded = new Recorded();
    let received: EnqueueRequest | undefined;
    const enqueue: Unary<EnqueueRequest, { jobId: string; duplicate: boolean }> = (call, callback) => {
      received = call.request;
      callback(null, { jobId: "q:1", duplicate: false });
    };
    const server = await FakeServer.start({ ...recorded.methods(), enqueue } as never);
    const client = new Client(server.target, { timeoutMs: 5_000, batching: false });
    try {
      await client.enqueue("q", {}, { dependsOn: [PARENT], onDependencyFailure: "dead_letter" });
      assert.deepEqual(received?.dependsOn, [PARENT]);
      assert.equal(received?.onDependencyFailure, ProtoPolicy.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER);
      await assert.rejects(client.enqueue("q", {}, { ref: "a" } as never), fieldIs("ref"));
    } finally {
      await client.close();
      server.stop();
    }
  });

  test("a gathered batch refused for one job's unknown parent fails that call only; the others go again", async () => {
    const MISSING = "q:01ARZ3NDEKTSV4RRFFQ69G5FAX";
    const messages: EnqueueRequest[][] = [];
    const enqueueStream = (call: Stream): void => {
      call.on("data", (request: EnqueueStreamRequest) => {
        messages.push(request.requests);
        const index = request.requests.findIndex((job) => job.dependsOn.includes(MISSING));
        if (index < 0) {
          const responses = request.requests.map((_, i) => ({ jobId: `q:${messages.length}-${i}`, duplicate: false }));
          call.write({ sequence: request.sequence, responses, error: undefined });
          return;
        }
        // As the server refuses it: NOT_FOUND naming the field, nothing of the batch written.
        const field = `requests[${index}].depends_on[0]`;
        const refused = refusal({ code: GrpcStatus.NOT_FOUND, reason: "JOB_NOT_FOUND", field });
        const status = Status.decode(refused.metadata?.get("grpc-status-details-bin")[0] as Buffer);
        call.write({ sequence: request.sequence, responses: [], error: { ...status, message: `${field}: no job ${MISSING}` } });
      });
      call.on("end", () => call.end());
      call.on("error", () => undefined);
    };
    const server = await FakeServer.start({ enqueueStream } as never);
    const client = new Client(server.target, { timeoutMs: 5_000 });
    try {
      const calls = [
        client.enqueue("q", { n: 0 }, { dependsOn: [PARENT] }),
        client.enqueue("q", { n: 1 }, { dependsOn: [MISSING] }),
        client.enqueue("q", { n: 2 }),
      ];
      const [first, missing, third] = await Promise.allSettled(calls);
      assert.equal(first?.status, "fulfilled");
      assert.equal(third?.status, "fulfilled");
      assert.equal(missing?.status, "rejected");
      const error: unknown = missing?.status === "rejected" ? missing.reason : undefined;
      assert.ok(error instanceof NotFoundError, String(error));
      assert.equal(error.field, "depends_on[0]", "named as for a single enqueue");
      assert.equal(error.message, `depends_on[0]: no job ${MISSING}`);
      assert.deepEqual(messages.map((message) => message.length), [3, 2], "sent together, then again without it");
    } finally {
      await client.close();
      server.stop();
    }
  });

  test('listJobs asks for "waiting" jobs; getStatus and stats read dependencies back', async () => {
    await withServer(async (client, server) => {
      const listed: Job[] = [];
      for await (const found of client.listJobs("q", "waiting")) listed.push(found);
      assert.equal(server.listed[0]?.state, ProtoJobState.JOB_STATE_WAITING);
      assert.deepEqual(
        listed.map((found) => [found.state, found.dependsOn]),
        [["waiting", [PARENT]]],
      );
      const child = await client.getStatus("q:child");
      assert.deepEqual(child.dependsOn, [PARENT]);
      assert.equal(child.onDependencyFailure, "dead_letter");
      assert.equal((await client.stats("q"))[0]?.waiting, 2);
    });
  });

  test("a batch with refs over the limit is refused even when no server listens", async () => {
    const client = new Client(`127.0.0.1:${await freePort()}`, { timeoutMs: 60_000 });
    try {
      const jobs: JobSpec[] = Array.from({ length: MAX_BATCH * 2 }, (_, i) => ({ queue: "q", ref: `j${i}` }));
      const started = Date.now();
      await assert.rejects(client.enqueueBatch(jobs), fieldIs("requests"));
      assert.ok(Date.now() - started < 5_000, "at once, without trying to connect");
    } finally {
      await client.close();
    }
  });
});
