// Schedule specs to Schedule messages and back, without a server: what is refused before
// sending, and how the stored fields read.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Client, InternalError, InvalidArgumentError, type ScheduleInfo, type ScheduleSpec } from "../index.js";
import { Priority } from "../gen/jobqueue/v1/job.js";
import { CatchUpPolicy, type Schedule } from "../gen/jobqueue/v1/job_queue_service.js";
import { scheduleInfo, scheduleMessage } from "../schedules.js";

const invalid = (field: string) => (error: unknown) => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.field, field);
  assert.equal(error.reason, "INVALID_ARGUMENT");
  return true;
};

/** A stored schedule as the server would send it. */
function stored(overrides: Partial<Schedule> = {}): Schedule {
  return {
    name: "s",
    cron: undefined,
    interval: { seconds: 5, nanos: 0 },
    timeZone: "",
    template: {
      queue: "q",
      payload: undefined,
      payloadBytes: Buffer.alloc(0),
      priority: Priority.PRIORITY_UNSPECIFIED,
      maxAttempts: 0,
      backoff: undefined,
      leaseDuration: undefined,
      metadata: {},
      timeout: undefined,
      uniqueKey: "",
      partitionKey: "",
    },
    startTime: undefined,
    endTime: undefined,
    catchUp: CatchUpPolicy.CATCH_UP_POLICY_UNSPECIFIED,
    catchUpLimit: 0,
    paused: false,
    nextRunTime: new Date("2030-01-01T00:00:05Z"),
    lastRunTime: undefined,
    lastJobId: "",
    createTime: new Date("2030-01-01T00:00:00Z"),
    updateTime: new Date("2030-01-01T00:00:00Z"),
    ...overrides,
  };
}

describe("schedule specs", () => {
  test("a cron spec maps every field to the Schedule message", () => {
    const start = new Date("2030-01-01T00:00:00Z");
    const end = new Date("2031-01-01T00:00:00Z");
    const message = scheduleMessage({
      name: "nightly",
      cron: "0 3 * * *",
      timeZone: "Europe/Paris",
      queue: "reports",
      payload: { kind: "daily", when: new Date("2030-01-02T03:04:05.000Z") },
      priority: "high",
      maxAttempts: 5,
      backoff: { initialDelayMs: 1_500, noJitter: true },
      leaseDurationMs: 60_000,
      executionTimeoutMs: 90_000,
      uniqueKey: "nightly-report",
      partitionKey: "tenant-7",
      metadata: { owner: "ops" },
      start,
      end,
      catchUp: "all",
      catchUpLimit: 10,
    });
    assert.equal(message.name, "nightly");
    assert.equal(message.cron, "0 3 * * *");
    assert.equal(message.interval, undefined);
    assert.equal(message.timeZone, "Europe/Paris");
    assert.equal(message.startTime, start);
    assert.equal(message.endTime, end);
    assert.equal(message.catchUp, CatchUpPolicy.CATCH_UP_POLICY_ALL);
    assert.equal(message.catchUpLimit, 10);
    const template = message.template;
    assert.ok(template !== undefined);
    assert.equal(template.queue, "reports");
    assert.deepEqual(template.payload, { kind: "daily", when: "2030-01-02T03:04:05.000Z" });
    assert.equal(template.payloadBytes.length, 0);
    assert.equal(template.priority, Priority.PRIORITY_HIGH);
    assert.equal(template.maxAttempts, 5);
    assert.deepEqual(template.backoff, {
      initialDelay: { seconds: 1, nanos: 500_000_000 },
      maxDelay: undefined,
      multiplier: 0,
      jitter: 0,
      noJitter: true,
    });
    assert.deepEqual(template.leaseDuration, { seconds: 60, nanos: 0 });
    assert.deepEqual(template.timeout, { seconds: 90, nanos: 0 });
    assert.equal(template.uniqueKey, "nightly-report");
    assert.equal(template.partitionKey, "tenant-7");
    assert.deepEqual(template.metadata, { owner: "ops" });
    // Output-only fields are left at their zero values.
    assert.equal(message.paused, false);
    assert.equal(message.nextRunTime, undefined);
    assert.equal(message.createTime, undefined);
  });

  test("an interval spec sends a Duration; unset fields are the contract's defaults", () => {
    const message = scheduleMessage({ name: "tick", everyMs: 1_500, queue: "q", payload: new Uint8Array([1, 2]) });
    assert.equal(message.cron, undefined);
    assert.deepEqual(message.interval, { seconds: 1, nanos: 500_000_000 });
    assert.equal(message.timeZone, "");
    assert.equal(message.catchUp, CatchUpPolicy.CATCH_UP_POLICY_UNSPECIFIED);
    assert.equal(message.catchUpLimit, 0);
    assert.deepEqual([...(message.template?.payloadBytes ?? [])], [1, 2]);
    assert.equal(message.template?.payload, undefined);
    assert.equal(message.template?.priority, Priority.PRIORITY_UNSPECIFIED);
    assert.equal(message.template?.backoff, undefined);
    assert.equal(message.template?.timeout, undefined);
    assert.equal(message.template?.uniqueKey, "", "no unique key unless given");
    assert.equal(message.template?.partitionKey, "", "no partition key unless given");
  });

  test("what the wire cannot carry is refused before sending, naming the field", () => {
    const base = { name: "s", queue: "q" };
    const cases: [unknown, string][] = [
      [{ ...base }, "schedule.cron"],
      [{ ...base, cron: "* * * * *", everyMs: 1_000 }, "schedule.cron"],
      [{ ...base, cron: 5 }, "schedule.cron"],
      [{ ...base, everyMs: -1 }, "schedule.interval"],
      [{ ...base, everyMs: Number.NaN }, "schedule.interval"],
      [{ ...base, everyMs: 1_000, catchUp: "sometimes" }, "schedule.catch_up"],
      [{ ...base, everyMs: 1_000, catchUp: "constructor" }, "schedule.catch_up"],
      [{ ...base, everyMs: 1_000, catchUpLimit: 1.5 }, "schedule.catch_up_limit"],
      [{ ...base, everyMs: 1_000, start: new Date(Number.NaN) }, "schedule.start_time"],
      [{ ...base, everyMs: 1_000, end: "tomorrow" }, "schedule.end_time"],
      [{ ...base, everyMs: 1_000, priority: "urgent" }, "schedule.template.priority"],
      [{ ...base, everyMs: 1_000, payload: { n: 10n } }, "schedule.template.payload.n"],
      [{ ...base, everyMs: 1_000, leaseDurationMs: -5 }, "schedule.template.lease_duration"],
      [{ ...base, everyMs: 1_000, executionTimeoutMs: -5 }, "schedule.template.timeout"],
      [{ ...base, everyMs: 1_000, backoff: { maxDelayMs: -1 } }, "schedule.template.backoff.max_delay"],
    ];
    for (const [spec, field] of cases) {
      assert.throws(() => scheduleMessage(spec as ScheduleSpec), invalid(field), JSON.stringify(spec, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)));
    }
  });

  test("the client refuses a bad spec or page size without a server", async () => {
    const offline = new Client("127.0.0.1:9", { timeoutMs: 1_000, batching: false });
    try {
      const both = { name: "s", queue: "q", cron: "* * * * *", everyMs: 1_000 } as unknown as ScheduleSpec;
      await assert.rejects(offline.createSchedule(both), invalid("schedule.cron"));
      await assert.rejects(offline.updateSchedule({ name: "s", queue: "q", everyMs: -1 }), invalid("schedule.interval"));
      await assert.rejects(offline.listSchedules({ pageSize: 2.5 }), invalid("page_size"));
    } finally {
      await offline.close();
    }
  });
});

describe("stored schedules", () => {
  test("an interval schedule reads as a ScheduleInfo with the defaults filled in", () => {
    const info = scheduleInfo(stored());
    assert.deepEqual(info, {
      name: "s",
      everyMs: 5_000,
      queue: "q",
      priority: "normal",
      maxAttempts: 0,
      metadata: {},
      catchUp: "skip",
      catchUpLimit: 0,
      paused: false,
      nextRunTime: new Date("2030-01-01T00:00:05Z"),
      lastJobId: "",
      createTime: new Date("2030-01-01T00:00:00Z"),
      updateTime: new Date("2030-01-01T00:00:00Z"),
    });
  });

  test("a cron schedule reads every field the server set", () => {
    const info = scheduleInfo(
      stored({
        interval: undefined,
        cron: "@hourly",
        timeZone: "Europe/Paris",
        template: {
          queue: "q",
          payload: { a: 1 },
          payloadBytes: Buffer.alloc(0),
          priority: Priority.PRIORITY_LOW,
          maxAttempts: 4,
          backoff: { initialDelay: { seconds: 2, nanos: 0 }, maxDelay: undefined, multiplier: 3, jitter: 0, noJitter: true },
          leaseDuration: { seconds: 0, nanos: 250_000_000 },
          metadata: { k: "v" },
          timeout: { seconds: 120, nanos: 0 },
          uniqueKey: "nightly",
          partitionKey: "tenant-7",
        },
        startTime: new Date("2030-01-01T00:00:00Z"),
        endTime: new Date("2031-01-01T00:00:00Z"),
        catchUp: CatchUpPolicy.CATCH_UP_POLICY_ONCE,
        paused: true,
        nextRunTime: undefined,
        lastRunTime: new Date("2030-01-01T01:00:00Z"),
        lastJobId: "q:01ARZ3NDEKTSV4RRFFQ69G5FAV",
      }),
    );
    assert.equal(info.cron, "@hourly");
    assert.equal(info.everyMs, undefined);
    assert.ok(!("everyMs" in info));
    assert.equal(info.timeZone, "Europe/Paris");
    assert.deepEqual(info.payload, { a: 1 });
    assert.equal(info.priority, "low");
    assert.equal(info.maxAttempts, 4);
    assert.deepEqual(info.backoff, { initialDelayMs: 2_000, multiplier: 3, noJitter: true });
    assert.equal(info.leaseDurationMs, 250);
    assert.equal(info.executionTimeoutMs, 120_000);
    assert.equal(info.uniqueKey, "nightly");
    assert.equal(info.partitionKey, "tenant-7");
    assert.deepEqual(info.metadata, { k: "v" });
    assert.deepEqual(info.start, new Date("2030-01-01T00:00:00Z"));
    assert.deepEqual(info.end, new Date("2031-01-01T00:00:00Z"));
    assert.equal(info.catchUp, "once");
    assert.equal(info.paused, true);
    assert.ok(!("nextRunTime" in info), "paused: no next run");
    assert.deepEqual(info.lastRunTime, new Date("2030-01-01T01:00:00Z"));
    assert.equal(info.lastJobId, "q:01ARZ3NDEKTSV4RRFFQ69G5FAV");
  });

  test("a binary payload reads as bytes", () => {
    const template = { ...stored().template!, payloadBytes: Buffer.from([7, 8]) };
    const info = scheduleInfo(stored({ template }));
    assert.ok(info.payload instanceof Uint8Array);
    assert.deepEqual([...info.payload], [7, 8]);
  });

  test("a ScheduleInfo is a spec: sent back, it carries the same definition", () => {
    const first = stored({
      cron: "*/5 * * * *",
      interval: undefined,
      timeZone: "UTC",
      catchUp: CatchUpPolicy.CATCH_UP_POLICY_ALL,
      catchUpLimit: 7,
      paused: true,
      lastJobId: "q:01ARZ3NDEKTSV4RRFFQ69G5FAV",
    });
    const info: ScheduleInfo = scheduleInfo(first);
    const again = scheduleMessage({ ...info, metadata: { changed: "yes" } });
    assert.equal(again.cron, "*/5 * * * *");
    assert.equal(again.timeZone, "UTC");
    assert.equal(again.catchUp, CatchUpPolicy.CATCH_UP_POLICY_ALL);
    assert.equal(again.catchUpLimit, 7);
    assert.deepEqual(again.template?.metadata, { changed: "yes" });
    assert.equal(again.paused, false, "state is not sent");
    assert.equal(again.lastJobId, "");
    // Switching timings: the other one is cleared.
    const every = scheduleMessage({ ...info, cron: undefined, everyMs: 60_000 });
    assert.equal(every.cron, undefined);
    assert.deepEqual(every.interval, { seconds: 60, nanos: 0 });
  });

  test("a schedule the contract does not allow is InternalError", () => {
    assert.throws(() => scheduleInfo(stored({ interval: undefined })), InternalError);
    assert.throws(() => scheduleInfo(stored({ template: undefined })), InternalError);
    assert.throws(() => scheduleInfo(stored({ createTime: undefined })), InternalError);
    assert.throws(() => scheduleInfo(stored({ catchUp: 99 as CatchUpPolicy })), InternalError);
  });
});
