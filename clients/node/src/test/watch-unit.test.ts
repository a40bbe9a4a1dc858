// watchJob and waitFor against scripted servers (no jobq server): a WatchJob that ends, breaks
// or never ends, and a server without WatchJob, which waitFor polls instead.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { status as GrpcStatus, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from "@grpc/grpc-js";

import { Client, DeadlineExceededError, JobQueueError, NotFoundError, type Job as PublicJob } from "../index.js";
import { Job, JobState } from "../gen/jobqueue/v1/job.js";
import type { GetStatusRequest, GetStatusResponse, WatchJobRequest, WatchJobResponse } from "../gen/jobqueue/v1/job_queue_service.js";
import { FakeServer, statusError } from "./helpers/fake-server.js";
import { waitUntil } from "./helpers/wait.js";

const ID = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV";

function job(state: JobState, extra: Partial<Job> = {}): Job {
  return Job.fromPartial({ id: ID, queue: "q", state, ...extra });
}

type Watch = ServerWritableStream<WatchJobRequest, WatchJobResponse>;

/** A client of a fake server, both closed after `body`. */
async function withServer(methods: Record<string, unknown>, body: (client: Client, server: FakeServer) => Promise<void>): Promise<void> {
  const server = await FakeServer.start(methods as never);
  const client = new Client(server.target, { timeoutMs: 5_000 });
  try {
    await body(client, server);
  } finally {
    await client.close();
    server.stop();
  }
}

describe("watchJob and waitFor (scripted servers)", { timeout: 60_000 }, () => {
  test("watchJob yields each state through to the finished job, then ends", async () => {
    const states = [JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_ACTIVE, JobState.JOB_STATE_ACTIVE, JobState.JOB_STATE_COMPLETED];
    let asked = "";
    const watchJob = (call: Watch): void => {
      asked = call.request.jobId;
      states.forEach((state, index) => {
        const progress = index === 2 ? { percent: 50, message: "half", time: new Date() } : undefined;
        call.write({ job: job(state, { progress }) });
      });
      call.end();
    };
    await withServer({ watchJob }, async (client) => {
      const seen: PublicJob[] = [];
      for await (const update of client.watchJob(ID)) seen.push(update);
      assert.equal(asked, ID);
      assert.deepEqual(
        seen.map((update) => update.state),
        ["queued", "active", "active", "completed"],
      );
      assert.equal(seen[2]?.progress?.percent, 50);
      const done = await client.waitFor(ID, { timeoutMs: 10_000 });
      assert.equal(done.state, "completed");
    });
  });

  test("an unknown job is NotFoundError", async () => {
    const watchJob = (call: Watch): void => void call.emit("error", statusError(GrpcStatus.NOT_FOUND, "no such job"));
    await withServer({ watchJob }, async (client) => {
      await assert.rejects(async () => {
        for await (const _ of client.watchJob(ID)) assert.fail("no job expected");
      }, NotFoundError);
      await assert.rejects(client.waitFor(ID, { timeoutMs: 5_000 }), NotFoundError);
    });
  });

  test("waitFor polls GetStatus when the server has no WatchJob", async () => {
    let calls = 0;
    const getStatus = (_: ServerUnaryCall<GetStatusRequest, GetStatusResponse>, callback: sendUnaryData<GetStatusResponse>): void => {
      calls += 1;
      callback(null, { job: job(calls < 3 ? JobState.JOB_STATE_ACTIVE : JobState.JOB_STATE_DEAD, { lastError: "boom" }) });
    };
    await withServer({ getStatus }, async (client) => {
      await assert.rejects(
        async () => {
          for await (const _ of client.watchJob(ID)) assert.fail("no job expected");
        },
        (error: unknown) => error instanceof JobQueueError && error.code === GrpcStatus.UNIMPLEMENTED,
      );
      const done = await client.waitFor(ID, { timeoutMs: 10_000 });
      assert.equal(done.state, "dead");
      assert.equal(done.lastError, "boom");
      assert.equal(calls, 3);
    });
  });

  test("a watch the server breaks off is started again", async () => {
    let watches = 0;
    const watchJob = (call: Watch): void => {
      watches += 1;
      call.write({ job: job(JobState.JOB_STATE_ACTIVE) });
      if (watches === 1) {
        call.emit("error", statusError(GrpcStatus.UNAVAILABLE, "server going away"));
        return;
      }
      call.write({ job: job(JobState.JOB_STATE_CANCELLED) });
      call.end();
    };
    await withServer({ watchJob }, async (client) => {
      const done = await client.waitFor(ID, { timeoutMs: 10_000 });
      assert.equal(done.state, "cancelled");
      assert.equal(watches, 2);
    });
  });

  test("waitFor gives up after timeoutMs with WAIT_TIMEOUT; breaking out of watchJob ends the call", async () => {
    const open: Watch[] = [];
    const cancelled: Watch[] = [];
    const watchJob = (call: Watch): void => {
      open.push(call);
      call.on("cancelled", () => cancelled.push(call));
      call.write({ job: job(JobState.JOB_STATE_ACTIVE) }); // and never finishes
    };
    await withServer({ watchJob }, async (client) => {
      await assert.rejects(client.waitFor(ID, { timeoutMs: 300 }), (error: unknown) => {
        assert.ok(error instanceof DeadlineExceededError, String(error));
        assert.equal(error.reason, "WAIT_TIMEOUT");
        return true;
      });
      for await (const update of client.watchJob(ID)) {
        assert.equal(update.state, "active");
        break;
      }
      await waitUntil(() => cancelled.length === open.length, "every watch call to end");
    });
  });

  test("an aborted signal ends a watch and a wait with its reason", async () => {
    const watchJob = (call: Watch): void => void call.write({ job: job(JobState.JOB_STATE_QUEUED) });
    await withServer({ watchJob }, async (client) => {
      const controller = new AbortController();
      const waiting = client.waitFor(ID, { timeoutMs: 30_000, signal: controller.signal });
      const watching = (async () => {
        for await (const _ of client.watchJob(ID, { signal: controller.signal })) {
          // keeps watching
        }
      })();
      setTimeout(() => controller.abort(new Error("enough")), 50);
      await assert.rejects(waiting, /enough/);
      await assert.rejects(watching, /enough/);
    });
  });
});
