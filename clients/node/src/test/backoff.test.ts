import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ReconnectBackoff, pollIntervals } from "../backoff.js";

describe("ReconnectBackoff", () => {
  test("ceilings double from the base up to the cap", () => {
    const backoff = new ReconnectBackoff({ random: () => 1 });
    const delays = Array.from({ length: 10 }, () => backoff.nextDelayMs());
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  });

  test("full jitter: each delay is uniform between 0 and the ceiling", () => {
    const low = new ReconnectBackoff({ random: () => 0 });
    assert.equal(low.nextDelayMs(), 0);
    const half = new ReconnectBackoff({ random: () => 0.5 });
    half.nextDelayMs();
    assert.equal(half.nextDelayMs(), 100);
    const real = new ReconnectBackoff();
    for (let i = 0; i < 200; i += 1) {
      const ceiling = real.ceilingMs();
      const delay = real.nextDelayMs();
      assert.ok(delay >= 0 && delay <= ceiling, `${delay} within [0, ${ceiling}]`);
    }
  });

  test("a long outage does not overflow", () => {
    const backoff = new ReconnectBackoff({ random: () => 1 });
    backoff.failures = 10_000;
    assert.equal(backoff.nextDelayMs(), 10_000);
  });

  test("a connection that stayed up 30 s resets the backoff; a short one does not", () => {
    const backoff = new ReconnectBackoff({ random: () => 1 });
    backoff.nextDelayMs();
    backoff.nextDelayMs();
    backoff.connectionEnded(29_999);
    assert.equal(backoff.nextDelayMs(), 400);
    backoff.connectionEnded(30_000);
    assert.equal(backoff.failures, 0);
    assert.equal(backoff.nextDelayMs(), 100);
  });

  test("base, cap and reset period are configurable", () => {
    const backoff = new ReconnectBackoff({ baseMs: 10, capMs: 25, resetAfterMs: 5, random: () => 1 });
    assert.deepEqual([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()], [10, 20, 25]);
    backoff.connectionEnded(5);
    assert.equal(backoff.nextDelayMs(), 10);
  });
});

describe("pollIntervals", () => {
  test("grow from 10 ms by half each time and stay at 500 ms", () => {
    const intervals = pollIntervals();
    const first = Array.from({ length: 12 }, () => intervals.next().value);
    assert.equal(first[0], 10);
    assert.equal(first[1], 15);
    for (let i = 1; i < first.length; i += 1) assert.ok((first[i] as number) >= (first[i - 1] as number));
    assert.ok(first.every((ms) => ms <= 500));
    for (let i = 0; i < 20; i += 1) intervals.next();
    assert.equal(intervals.next().value, 500);
  });
});
