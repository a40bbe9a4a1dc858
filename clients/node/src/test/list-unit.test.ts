// listJobs against scripted servers (no jobq server): the filters as sent on each call, pages
// that come back empty with a token (a filtered call examines a bounded number of jobs), and a
// token handed back unchanged.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";

import { Client, InternalError, InvalidArgumentError, type ListJobsOptions } from "../index.js";
import { Job, JobState } from "../gen/jobqueue/v1/job.js";
import type { ListJobsRequest, ListJobsResponse } from "../gen/jobqueue/v1/job_queue_service.js";
import { FakeServer } from "./helpers/fake-server.js";

type ListJobs = (call: ServerUnaryCall<ListJobsRequest, ListJobsResponse>, callback: sendUnaryData<ListJobsResponse>) => void;

/** One scripted page: the ids of its jobs and the token it hands on. */
interface Page {
  ids: string[];
  next: string;
}

/** A server answering ListJobs with `pages`, one per call, recording each request. */
function scripted(pages: Page[]): { listJobs: ListJobs; requests: ListJobsRequest[] } {
  const requests: ListJobsRequest[] = [];
  const listJobs: ListJobs = (call, callback) => {
    requests.push(call.request);
    const page = pages[requests.length - 1] ?? { ids: [], next: "" };
    const jobs = page.ids.map((id) => Job.fromPartial({ id, queue: "q", state: JobState.JOB_STATE_QUEUED }));
    callback(null, { jobs, nextPageToken: page.next, totalSize: 0 });
  };
  return { listJobs, requests };
}

/** A client of a fake server, both closed after `body`. */
async function withServer(methods: Record<string, unknown>, body: (client: Client) => Promise<void>): Promise<void> {
  const server = await FakeServer.start(methods as never);
  const client = new Client(server.target, { timeoutMs: 5_000 });
  try {
    await body(client);
  } finally {
    await client.close();
    server.stop();
  }
}

async function ids(client: Client, options: ListJobsOptions = {}): Promise<string[]> {
  const found: string[] = [];
  for await (const job of client.listJobs("q", "queued", options)) found.push(job.id);
  return found;
}

describe("listJobs filters and paging (scripted servers)", { timeout: 60_000 }, () => {
  test("the filters go on every call, with the token of the page before", async () => {
    const { listJobs, requests } = scripted([
      { ids: ["q:1"], next: "t1" },
      { ids: ["q:2"], next: "" },
    ]);
    const createdAfter = new Date("2026-01-02T03:04:05.678Z");
    const createdBefore = new Date("2026-02-03T04:05:06.789Z");
    const metadata = { customer: "acme", region: "eu" };
    await withServer({ listJobs }, async (client) => {
      assert.deepEqual(await ids(client, { pageSize: 1, createdAfter, createdBefore, metadata }), ["q:1", "q:2"]);
    });
    assert.deepEqual(
      requests.map((r) => r.pageToken),
      ["", "t1"],
    );
    for (const request of requests) {
      assert.equal(request.pageSize, 1);
      assert.equal(request.state, JobState.JOB_STATE_QUEUED);
      assert.equal(request.createdAfter?.getTime(), createdAfter.getTime());
      assert.equal(request.createdBefore?.getTime(), createdBefore.getTime());
      assert.deepEqual(request.metadata, metadata);
    }
  });

  test("without filters none is sent", async () => {
    const { listJobs, requests } = scripted([{ ids: ["q:1"], next: "" }]);
    await withServer({ listJobs }, async (client) => {
      assert.deepEqual(await ids(client), ["q:1"]);
    });
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.createdAfter, undefined);
    assert.equal(requests[0]?.createdBefore, undefined);
    assert.deepEqual(requests[0]?.metadata, {});
  });

  test("only one bound: the other stays unset", async () => {
    const { listJobs, requests } = scripted([]);
    const createdBefore = new Date("2026-02-03T04:05:06Z");
    await withServer({ listJobs }, async (client) => {
      assert.deepEqual(await ids(client, { createdBefore }), []);
    });
    assert.equal(requests[0]?.createdAfter, undefined);
    assert.equal(requests[0]?.createdBefore?.getTime(), createdBefore.getTime());
  });

  test("empty pages with a token are followed to the jobs after them", async () => {
    const { listJobs, requests } = scripted([
      { ids: [], next: "t1" },
      { ids: ["q:1"], next: "t2" },
      { ids: [], next: "t3" },
      { ids: [], next: "t4" },
      { ids: ["q:2"], next: "t5" },
      { ids: [], next: "" },
    ]);
    await withServer({ listJobs }, async (client) => {
      assert.deepEqual(await ids(client, { metadata: { k: "v" } }), ["q:1", "q:2"]);
    });
    assert.deepEqual(
      requests.map((r) => r.pageToken),
      ["", "t1", "t2", "t3", "t4", "t5"],
    );
  });

  test("an empty page handing back the token it was given ends the listing", async () => {
    const { listJobs, requests } = scripted([
      { ids: ["q:1"], next: "t1" },
      { ids: [], next: "t1" },
      { ids: ["q:never"], next: "" },
    ]);
    await withServer({ listJobs }, async (client) => {
      assert.deepEqual(await ids(client, { metadata: { k: "v" } }), ["q:1"]);
    });
    assert.equal(requests.length, 2, "not asked again");
  });

  test("a page of jobs handing back the same token is InternalError (it would repeat them)", async () => {
    const { listJobs, requests } = scripted([
      { ids: ["q:1"], next: "t1" },
      { ids: ["q:2"], next: "t1" },
    ]);
    await withServer({ listJobs }, async (client) => {
      const seen: string[] = [];
      await assert.rejects(async () => {
        for await (const job of client.listJobs("q", "queued")) seen.push(job.id);
      }, InternalError);
      assert.deepEqual(seen, ["q:1", "q:2"]);
    });
    assert.equal(requests.length, 2);
  });

  test("a bound that is not a valid Date is refused before anything is sent, naming the field", async () => {
    const { listJobs, requests } = scripted([]);
    const field = (name: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === name;
    await withServer({ listJobs }, async (client) => {
      await assert.rejects(ids(client, { createdAfter: new Date(Number.NaN) }), field("created_after"));
      await assert.rejects(ids(client, { createdBefore: "2026-01-01" as unknown as Date }), field("created_before"));
    });
    assert.equal(requests.length, 0);
  });
});
