import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { enqueueRequest, toDuration, toJsonObject, durationMs } from "../convert.js";
import { InvalidArgumentError } from "../errors.js";
import { Priority } from "../gen/jobqueue/v1/job.js";

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

  test("durations round-trip in milliseconds", () => {
    assert.deepEqual(toDuration(2_345, "d"), { seconds: 2, nanos: 345_000_000 });
    assert.equal(durationMs(toDuration(2_345, "d")), 2_345);
    assert.throws(() => toDuration(-1, "delay"), (error: unknown) => error instanceof InvalidArgumentError && error.field === "delay");
  });
});
