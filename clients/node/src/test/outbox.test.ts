import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";

import { Durability } from "../gen/jobqueue/v1/job.js";
import type { LeaseRequest } from "../gen/jobqueue/v1/job_queue_service.js";
import { LeaseKeeper } from "../keeper.js";
import { MAX_ITEMS_PER_REQUEST, Outbox } from "../outbox.js";

const ack = (n: number) => ({ jobId: `q:${n}`, leaseToken: `t${n}`, result: { n },
  durability: Durability.DURABILITY_UNSPECIFIED,
  handlerDuration: undefined,
});

describe("Outbox", () => {
  test("everything settled in one tick goes out in one LeaseRequest", async () => {
    const sent: LeaseRequest[] = [];
    const outbox = new Outbox((request) => sent.push(request));
    outbox.ack(ack(1));
    outbox.fail({ jobId: "q:2", leaseToken: "t2", error: "boom", nonRetryable: false, retryDelay: undefined, handlerDuration: undefined });
    outbox.extend({ jobId: "q:3", leaseToken: "t3", leaseDuration: { seconds: 1, nanos: 0 } });
    outbox.ack(ack(4));
    assert.equal(sent.length, 0, "nothing is written synchronously");
    await nextTurn();
    assert.equal(sent.length, 1);
    const [request] = sent as [LeaseRequest];
    assert.deepEqual(request.acks.map((a) => a.jobId), ["q:1", "q:4"]);
    assert.equal(request.fails.length, 1);
    assert.equal(request.extends.length, 1);
    assert.equal(request.subscribe, undefined);
  });

  test("a new window rides with the next message", async () => {
    const sent: LeaseRequest[] = [];
    const outbox = new Outbox((request) => sent.push(request));
    outbox.resubscribe({ queues: [], maxInFlight: 1, workerId: "", leaseDuration: undefined });
    outbox.ack(ack(1));
    await nextTurn();
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.subscribe?.maxInFlight, 1);
    assert.equal(sent[0]?.acks.length, 1);
  });

  test("a large burst is split at the item bound", async () => {
    const sent: LeaseRequest[] = [];
    const outbox = new Outbox((request) => sent.push(request));
    for (let n = 0; n < MAX_ITEMS_PER_REQUEST + 5; n += 1) outbox.ack(ack(n));
    await nextTurn();
    assert.deepEqual(sent.map((r) => r.acks.length), [MAX_ITEMS_PER_REQUEST, 5]);
  });

  test("close flushes at once and drops what comes later", () => {
    const sent: LeaseRequest[] = [];
    const outbox = new Outbox((request) => sent.push(request));
    outbox.ack(ack(1));
    outbox.close();
    assert.equal(sent.length, 1);
    outbox.ack(ack(2));
    outbox.flush();
    assert.equal(sent.length, 1);
  });
});

describe("LeaseKeeper", () => {
  test("extends a lease when two thirds of it have passed, with its length explicit", () => {
    let now = 0;
    const sent: string[] = [];
    const keeper = new LeaseKeeper((request) => sent.push(`${request.jobId}@${now}:${request.leaseDuration?.seconds}s`), () => now);
    keeper.track("q:a", "t", 3000);
    assert.equal(keeper.nextDueAt(), 2000);
    now = 1400;
    assert.equal(keeper.extendDue(), 0, "not due yet");
    now = 2000;
    assert.equal(keeper.extendDue(), 1);
    assert.deepEqual(sent, ["q:a@2000:3s"]);
    assert.equal(keeper.nextDueAt(), 4000, "measured again from the extend");
    keeper.stop();
  });

  test("leases due within a sixth of their length ride along", () => {
    let now = 0;
    const sent: string[] = [];
    const keeper = new LeaseKeeper((request) => sent.push(request.jobId), () => now);
    keeper.track("q:a", "t", 6000); // due at 4000
    now = 500;
    keeper.track("q:b", "t", 6000); // due at 4500, rides along from 3500
    now = 1900;
    keeper.track("q:c", "t", 6000); // due at 5900: too far
    now = 4000;
    keeper.extendDue();
    assert.deepEqual(sent, ["q:a", "q:b"]);
    keeper.forget("q:a");
    keeper.forget("q:b");
    keeper.forget("q:c");
    assert.equal(keeper.size, 0);
    assert.equal(keeper.nextDueAt(), Infinity);
  });
});
