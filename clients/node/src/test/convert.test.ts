import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  createTokenRequest,
  enqueueRequest,
  job,
  queueLimitsMessage,
  queueStats,
  toDuration,
  toJsonObject,
  durationMs,
  toDurability,
  tokenInfo,
} from "../convert.js";
import { InternalError, InvalidArgumentError } from "../errors.js";
import {
  Durability as ProtoDurability,
  Job as ProtoJob,
  JobState as ProtoJobState,
  Priority,
  QueueStats as ProtoQueueStats,
} from "../gen/jobqueue/v1/job.js";
import { TokenRole as ProtoTokenRole, type TokenInfo as ProtoTokenInfo } from "../gen/jobqueue/v1/job_queue_service.js";
import type { Durability, QueueLimits, TokenRole } from "../types.js";

describe("JSON payloads", () => {
  test("plain values pass through; Dates become strings; undefined members are dropped", () => {
    const when = new Date("2024-01-02T03:04:05.000Z");
    const json = toJsonObject({ a: 1, b: "ü", c: [1, undefined, null], d: { e: true, f: undefined }, when }, "payload");
    assert.deepEqual(json, { a: 1, b: "ü", c: [1, null, null], d: { e: true }, when: "2024-01-02T03:04:05.000Z" });
  });

  test("what JSON would silently lose is refused, naming the path", () => {
    const cases: [unknown, string][] = [
      [{ n: Number.NaN }, "payload.n"],
      [{ deep: { n: Infinity } }, "payload.deep.n"],
      [{ big: 10n }, "payload.big"],
      [{ list: [1, 2n] }, "payload.list[1]"],
    ];
    for (const [value, field] of cases) {
      assert.throws(() => toJsonObject(value, "payload"), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.equal(error.field, field);
        return true;
      });
    }
    const cycle: Record<string, unknown> = {};
    cycle["self"] = cycle;
    assert.throws(() => toJsonObject(cycle, "payload"), InvalidArgumentError);
    assert.throws(() => toJsonObject([1], "result"), /must be a JSON object/);
  });
});

describe("enqueue requests", () => {
  test("options map to the request's fields", () => {
    const runAt = new Date(Date.now() + 60_000);
    const request = enqueueRequest({
      queue: "q",
      payload: { x: 1 },
      priority: "high",
      runAt,
      maxAttempts: 5,
      idempotencyKey: "k",
      uniqueKey: "u",
      leaseDurationMs: 1500,
      metadata: { tenant: "t" },
      backoff: { initialDelayMs: 10, noJitter: true },
    });
    assert.equal(request.priority, Priority.PRIORITY_HIGH);
    assert.equal(request.scheduleTime, runAt);
    assert.deepEqual(request.leaseDuration, { seconds: 1, nanos: 500_000_000 });
    assert.deepEqual(request.backoff, {
      initialDelay: { seconds: 0, nanos: 10_000_000 },
      maxDelay: undefined,
      multiplier: 0,
      jitter: 0,
      noJitter: true,
    });
    assert.deepEqual(request.payload, { x: 1 });
    assert.equal(request.payloadBytes.length, 0);
    assert.equal(request.timeout, undefined, "no execution timeout unless given");
    assert.equal(request.startDeadline, undefined);
    assert.equal(request.idempotencyKey, "k");
    assert.equal(request.uniqueKey, "u");
    assert.equal(enqueueRequest({ queue: "q" }).uniqueKey, "", "no unique key unless given");
  });

  test("executionTimeoutMs and startDeadline map to timeout and start_deadline", () => {
    const startDeadline = new Date(Date.now() + 5_000);
    const request = enqueueRequest({ queue: "q", executionTimeoutMs: 2_500, startDeadline });
    assert.deepEqual(request.timeout, { seconds: 2, nanos: 500_000_000 });
    assert.equal(request.startDeadline, startDeadline);
    assert.throws(
      () => enqueueRequest({ queue: "q", executionTimeoutMs: -1 }, "requests[2]."),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === "requests[2].timeout",
    );
    assert.throws(
      () => enqueueRequest({ queue: "q", startDeadline: new Date(Number.NaN) }),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === "start_deadline",
    );
  });

  test("bytes go to payload_bytes", () => {
    const request = enqueueRequest({ queue: "q", payload: new Uint8Array([1, 2, 3]) });
    assert.equal(request.payload, undefined);
    assert.deepEqual([...request.payloadBytes], [1, 2, 3]);
  });

  test("delay and runAt together are refused before sending", () => {
    assert.throws(
      () => enqueueRequest({ queue: "q", delayMs: 5, runAt: new Date() }, "requests[4]."),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === "requests[4].delay",
    );
  });

  test("every durability level of the contract has its name; unset is the server's default", () => {
    const names: Record<Durability, ProtoDurability> = {
      applied: ProtoDurability.DURABILITY_APPLIED,
      fsynced: ProtoDurability.DURABILITY_FSYNCED,
      replicated: ProtoDurability.DURABILITY_REPLICATED,
    };
    const levels = Object.values(ProtoDurability).filter(
      (value): value is ProtoDurability => typeof value === "number" && value !== ProtoDurability.DURABILITY_UNSPECIFIED,
    );
    assert.deepEqual(Object.values(names).sort(), levels.sort(), "a level of the contract has no name");
    for (const [name, level] of Object.entries(names)) {
      assert.equal(toDurability(name as Durability, "durability"), level, name);
      assert.equal(enqueueRequest({ queue: "q", durability: name as Durability }).durability, level, name);
    }
    assert.equal(toDurability(undefined, "durability"), ProtoDurability.DURABILITY_UNSPECIFIED);
    assert.throws(
      () => toDurability("eventually" as unknown as Durability, "ackDurability"),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === "ackDurability" && /"replicated"/.test(error.message),
    );
  });

  test("durations round-trip in milliseconds", () => {
    assert.deepEqual(toDuration(2_345, "d"), { seconds: 2, nanos: 345_000_000 });
    assert.equal(durationMs(toDuration(2_345, "d")), 2_345);
    assert.throws(() => toDuration(-1, "delay"), (error: unknown) => error instanceof InvalidArgumentError && error.field === "delay");
  });
});

describe("jobs read back", () => {
  test("unique key, execution timeout, start deadline, progress and logs", () => {
    const time = new Date("2030-01-01T00:00:01Z");
    const message = ProtoJob.fromPartial({
      id: "q:01ARZ3NDEKTSV4RRFFQ69G5FAV",
      queue: "q",
      state: ProtoJobState.JOB_STATE_ACTIVE,
      timeout: { seconds: 90, nanos: 0 },
      startDeadline: new Date("2030-01-01T00:01:00Z"),
      progress: { percent: 42.5, message: "halfway", time },
      logs: [
        { line: "one", time },
        { line: "two", time },
      ],
      uniqueKey: "invoice-7",
    });
    const read = job(message);
    assert.equal(read.uniqueKey, "invoice-7");
    assert.equal(read.executionTimeoutMs, 90_000);
    assert.deepEqual(read.startDeadline, new Date("2030-01-01T00:01:00Z"));
    assert.deepEqual(read.progress, { percent: 42.5, message: "halfway", time });
    assert.deepEqual(read.logs, [
      { line: "one", time },
      { line: "two", time },
    ]);
  });

  test("a job without them reads as unset and empty", () => {
    const read = job(ProtoJob.fromPartial({ id: "q:x", queue: "q", state: ProtoJobState.JOB_STATE_QUEUED }));
    assert.equal(read.uniqueKey, undefined, "an empty unique key reads as unset");
    assert.equal(read.executionTimeoutMs, undefined);
    assert.equal(read.startDeadline, undefined);
    assert.equal(read.progress, undefined);
    assert.deepEqual(read.logs, []);
  });
});

describe("token messages", () => {
  const fieldIs = (field: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === field;

  test("roles map to the contract's values; ttlMs becomes a Duration, unset stays unset", () => {
    const roles: [TokenRole, ProtoTokenRole][] = [
      ["producer", ProtoTokenRole.TOKEN_ROLE_PRODUCER],
      ["worker", ProtoTokenRole.TOKEN_ROLE_WORKER],
      ["admin", ProtoTokenRole.TOKEN_ROLE_ADMIN],
    ];
    for (const [role, proto] of roles) {
      assert.deepEqual(createTokenRequest("n", role, ["a", "b.*"]), { name: "n", role: proto, queues: ["a", "b.*"], ttl: undefined });
    }
    assert.deepEqual(createTokenRequest("n", "worker", ["*"], 90_500).ttl, { seconds: 90, nanos: 500_000_000 });
    assert.deepEqual(createTokenRequest("n", "worker", ["*"], 0).ttl, { seconds: 0, nanos: 0 }); // the server refuses it, naming ttl
  });

  test("an unknown role, a negative ttl or queues that are not a list are refused, naming the field", () => {
    for (const role of ["reader", "Admin", "", "constructor", undefined]) {
      assert.throws(() => createTokenRequest("n", role as unknown as TokenRole, ["*"]), (error: unknown) => {
        assert.ok(fieldIs("role")(error), String(error));
        assert.match((error as Error).message, /^role: must be "producer", "worker" or "admin"/);
        return true;
      });
    }
    assert.throws(() => createTokenRequest("n", "producer", ["*"], -1), fieldIs("ttl"));
    assert.throws(() => createTokenRequest("n", "producer", "emails" as unknown as string[]), fieldIs("queues"));
  });

  test("a TokenInfo message becomes the public shape; an unknown role or no create time is InternalError", () => {
    const created = new Date("2024-05-06T07:08:09.123Z");
    const expires = new Date("2024-06-06T07:08:09.123Z");
    const message: ProtoTokenInfo = {
      tokenId: "0123abcd",
      name: "billing",
      role: ProtoTokenRole.TOKEN_ROLE_WORKER,
      queues: ["billing.*"],
      createTime: created,
      expireTime: undefined,
    };
    const info = tokenInfo(message);
    assert.deepEqual(info, { id: "0123abcd", name: "billing", role: "worker", queues: ["billing.*"], createTime: created });
    assert.ok(!("expireTime" in info));
    assert.deepEqual(tokenInfo({ ...message, role: ProtoTokenRole.TOKEN_ROLE_ADMIN, expireTime: expires }).expireTime, expires);
    assert.equal(tokenInfo({ ...message, role: ProtoTokenRole.TOKEN_ROLE_PRODUCER }).role, "producer");
    assert.throws(() => tokenInfo({ ...message, role: ProtoTokenRole.TOKEN_ROLE_UNSPECIFIED }), InternalError);
    assert.throws(() => tokenInfo({ ...message, role: 7 as ProtoTokenRole }), InternalError);
    assert.throws(() => tokenInfo({ ...message, createTime: undefined }), InternalError);
  });
});

describe("queue limits", () => {
  const fieldIs = (field: string) => (error: unknown) => error instanceof InvalidArgumentError && error.field === field;

  const NONE: QueueLimits = { ratePerSecond: 0, burst: 0, maxActive: 0, groupRatePerSecond: 0, groupBurst: 0, groupMaxActive: 0 };

  test("omitted limits are 0; {} is all zero (no limits)", () => {
    const limits = { ratePerSecond: 2.5, burst: 3, maxActive: 4 };
    assert.deepEqual(queueLimitsMessage(limits), { ...NONE, ...limits });
    assert.deepEqual(queueLimitsMessage({ maxActive: 1 }), { ...NONE, maxActive: 1 });
    assert.deepEqual(queueLimitsMessage({}), NONE);
    // Ranges are the server's: a negative int32 is sent as it is.
    assert.deepEqual(queueLimitsMessage({ maxActive: -1 }), { ...NONE, maxActive: -1 });
  });

  test("what the wire cannot carry is refused, naming the field", () => {
    assert.throws(() => queueLimitsMessage({ burst: 1.5 }), fieldIs("limits.burst"));
    assert.throws(() => queueLimitsMessage({ maxActive: 2 ** 31 }), fieldIs("limits.max_active"));
    assert.throws(() => queueLimitsMessage({ maxActive: Number.NaN }), fieldIs("limits.max_active"));
    assert.throws(() => queueLimitsMessage({ ratePerSecond: "5" as unknown as number }), fieldIs("limits.rate_per_second"));
    assert.throws(() => queueLimitsMessage(undefined as unknown as Partial<QueueLimits>), fieldIs("limits"));
  });

  test("stats carry limits only when the queue has them", () => {
    const message = ProtoQueueStats.fromPartial({ queue: "q", queued: 2, paused: true });
    const none = queueStats(message);
    assert.equal(none.limits, undefined);
    assert.ok(!("limits" in none));
    const some = queueStats({ ...message, limits: { ...NONE, ratePerSecond: 0.5, burst: 2 } });
    assert.deepEqual(some.limits, { ...NONE, ratePerSecond: 0.5, burst: 2 });
    assert.equal(some.queued, 2);
    assert.equal(some.paused, true);
  });
});
