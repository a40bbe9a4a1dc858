// Schedules (recurring jobs) against the real `jobq serve`: a schedule's jobs reach a worker,
// and create, get, list, update, pause, resume and delete read and change it as the contract
// (proto/jobqueue/v1/job_queue_service.proto) says.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  AlreadyExistsError,
  Client,
  InvalidArgumentError,
  NotFoundError,
  ScheduleExistsError,
  ScheduleNotFoundError,
  Worker,
  consoleLogger,
  type JobContext,
  type ScheduleInfo,
  type ScheduleSpec,
} from "../index.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping schedule integration tests: ${skip}`);

const HOUR_MS = 3_600_000;

describe("schedules against a real server", { skip, timeout: 120_000 }, () => {
  let server: TestServer;
  let client: Client;
  const created = new Set<string>();

  before(async () => {
    server = await TestServer.start();
    client = await Client.connect(server.target);
  });

  after(async () => {
    // Leave no schedule ticking while the server stops.
    await Promise.allSettled([...created].map((name) => client?.deleteSchedule(name)));
    await client?.close();
    await server?.stop();
  });

  /** Creates `spec` (remembered, to be deleted at the end). */
  async function create(spec: ScheduleSpec): Promise<ScheduleInfo> {
    created.add(spec.name);
    return client.createSchedule(spec);
  }

  /** The InvalidArgumentError check for `field`. */
  const invalid = (field: string) => (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.field, field, error.message);
    assert.equal(error.reason, "INVALID_ARGUMENT");
    return true;
  };

  /** The ScheduleNotFoundError check. */
  const notFound = (error: unknown) => {
    assert.ok(error instanceof ScheduleNotFoundError, String(error));
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.reason, "SCHEDULE_NOT_FOUND");
    assert.equal(error.codeName, "NOT_FOUND");
    return true;
  };

  test("an interval schedule's first job reaches a worker, and stays when the schedule is deleted", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-every-second`;
    const info = await create({ name, everyMs: 1_000, queue, payload: { report: "daily" }, metadata: { owner: "ops" } });
    assert.equal(info.name, name);
    assert.equal(info.everyMs, 1_000);
    assert.equal(info.cron, undefined);
    assert.equal(info.queue, queue);
    assert.equal(info.paused, false);
    assert.ok(info.nextRunTime instanceof Date, "created with its first tick");

    const seen: { payload: unknown; ctx: JobContext }[] = [];
    const stop = new AbortController();
    const worker = new Worker(client, { queues: [queue], logger: consoleLogger("error"), gracePeriodMs: 5_000 }).handle(
      queue,
      async (payload, ctx) => {
        seen.push({ payload, ctx });
        return { done: true };
      },
    );
    const running = worker.run({ signal: stop.signal });
    let first: { payload: unknown; ctx: JobContext };
    try {
      first = (await waitUntil(() => seen[0], "the schedule's first job", 30_000)) as { payload: unknown; ctx: JobContext };
    } finally {
      stop.abort();
      await running;
    }
    assert.deepEqual(first.payload, { report: "daily" });
    assert.equal(first.ctx.queue, queue);
    assert.deepEqual(first.ctx.metadata, { owner: "ops" });
    const job = await client.getStatus(first.ctx.jobId);
    assert.match(job.idempotencyKey, new RegExp(`^schedule:${name}:\\d+$`), "each tick's job carries schedule:<name>:<tick ms>");

    const ticked = await waitUntil(async () => {
      const current = await client.getSchedule(name);
      return current.lastRunTime !== undefined ? current : undefined;
    }, "the schedule's last run");
    assert.ok(ticked.lastJobId.startsWith(`${queue}:`), ticked.lastJobId);
    const tick = Number(job.idempotencyKey.split(":").at(-1));
    assert.equal(tick % 1_000, 0, "without a start, ticks fall on whole multiples of the interval since the epoch");
    assert.ok(ticked.lastRunTime !== undefined && ticked.lastRunTime.getTime() >= tick, "the last run is this tick or a later one");

    await client.deleteSchedule(name);
    created.delete(name);
    assert.equal((await client.getStatus(first.ctx.jobId)).id, first.ctx.jobId, "the jobs it made stay");
  });

  test("a template's unique key keeps ticks from piling up behind a pending job", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-unique`;
    const info = await create({ name, everyMs: 1_000, queue, uniqueKey: "sweep" });
    assert.equal(info.uniqueKey, "sweep");
    assert.equal((await client.getSchedule(name)).uniqueKey, "sweep");

    // No worker: the first tick's job stays queued and holds the key.
    const firstJobId = await waitUntil(async () => (await client.getSchedule(name)).lastJobId, "the schedule's first job", 30_000);
    const job = await client.getStatus(firstJobId);
    assert.equal(job.uniqueKey, "sweep");
    const later = job.createTime!.getTime() + 2_500;
    const ticked = await waitUntil(
      async () => {
        const current = await client.getSchedule(name);
        return current.nextRunTime !== undefined && current.nextRunTime.getTime() > later ? current : undefined;
      },
      "two more ticks",
      30_000,
    );
    assert.equal(ticked.lastJobId, firstJobId, "the later ticks returned the pending job");
    assert.equal((await client.stats(queue))[0]?.queued, 1, "the later ticks made no job");

    // Once that job ended, the next tick makes a new one.
    await client.cancel(firstJobId);
    const nextJobId = await waitUntil(
      async () => {
        const { lastJobId } = await client.getSchedule(name);
        return lastJobId !== firstJobId ? lastJobId : undefined;
      },
      "a tick after the cancel",
      30_000,
    );
    assert.equal((await client.getStatus(nextJobId)).state, "queued");
    assert.equal((await client.stats(queue))[0]?.queued, 1);

    // Without one, the definition reads back without it.
    const { uniqueKey: _dropped, ...rest } = ticked;
    assert.equal((await client.updateSchedule(rest)).uniqueKey, undefined);
    await client.deleteSchedule(name);
    created.delete(name);
  });

  test("getSchedule returns the definition with its next run; listSchedules includes it, sorted by name", async () => {
    const queue = uniqueQueue("node-sched");
    const spec: ScheduleSpec = {
      name: `${queue}-hourly`,
      everyMs: HOUR_MS,
      queue,
      payload: { n: 1, nested: { ok: true } },
      priority: "high",
      maxAttempts: 4,
      leaseDurationMs: 45_000,
      metadata: { tenant: "acme" },
      catchUp: "all",
      catchUpLimit: 5,
    };
    const info = await create(spec);
    const got = await client.getSchedule(spec.name);
    assert.deepEqual(got, info, "get returns what create returned");
    assert.equal(got.everyMs, HOUR_MS);
    assert.deepEqual(got.payload, spec.payload);
    assert.equal(got.priority, "high");
    assert.equal(got.maxAttempts, 4);
    assert.equal(got.leaseDurationMs, 45_000);
    assert.deepEqual(got.metadata, { tenant: "acme" });
    assert.equal(got.catchUp, "all");
    assert.equal(got.catchUpLimit, 5);
    assert.equal(got.paused, false);
    assert.ok(got.nextRunTime instanceof Date);
    assert.ok(got.nextRunTime.getTime() >= got.createTime.getTime(), "the next run is not before its creation");
    assert.equal(got.nextRunTime.getTime() % HOUR_MS, 0, "without a start, an hourly interval ticks on the hour (UTC)");
    assert.equal(got.lastRunTime, undefined, "no tick yet");
    assert.equal(got.lastJobId, "");
    assert.ok(got.createTime instanceof Date && got.updateTime instanceof Date);

    const cron = await create({ name: `${queue}-cron`, cron: "0 3 * * *", timeZone: "Europe/Paris", queue });
    assert.equal(cron.cron, "0 3 * * *");
    assert.equal(cron.everyMs, undefined);
    assert.equal(cron.timeZone, "Europe/Paris");
    assert.ok(cron.nextRunTime instanceof Date);

    const listed = await client.listSchedules();
    assert.deepEqual(listed.find((s) => s.name === spec.name), got);
    assert.ok(listed.some((s) => s.name === cron.name));
    const names = listed.map((s) => s.name);
    assert.deepEqual(names, [...names].sort(), "sorted by name");
  });

  test("listSchedules follows the page token through every page", async () => {
    const prefix = uniqueQueue("node-sched-page");
    const names = ["a", "b", "c", "d", "e"].map((suffix) => `${prefix}-${suffix}`);
    for (const name of names) await create({ name, everyMs: HOUR_MS, queue: prefix });
    const listed = await client.listSchedules({ pageSize: 2 });
    assert.deepEqual(
      listed.map((s) => s.name).filter((name) => name.startsWith(prefix)),
      names,
    );
    assert.equal(new Set(listed.map((s) => s.name)).size, listed.length, "no schedule twice");
  });

  test("updateSchedule replaces the whole definition and keeps the name and creation time", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-update`;
    const info = await create({ name, everyMs: HOUR_MS, queue, metadata: { version: "1" }, priority: "low" });
    const updated = await client.updateSchedule({ ...info, cron: undefined, everyMs: 2 * HOUR_MS, metadata: { version: "2" } });
    assert.equal(updated.name, name);
    assert.equal(updated.everyMs, 2 * HOUR_MS);
    assert.deepEqual(updated.metadata, { version: "2" });
    assert.equal(updated.priority, "low", "what the spec carried over stays");
    assert.equal(updated.paused, false);
    assert.ok(updated.nextRunTime instanceof Date);
    assert.deepEqual(updated.createTime, info.createTime);
    assert.ok(updated.updateTime.getTime() >= info.updateTime.getTime());
    assert.deepEqual(await client.getSchedule(name), updated);

    // The whole definition is replaced: what the new spec leaves out takes its default.
    const bare = await client.updateSchedule({ name, cron: "*/10 * * * *", queue });
    assert.equal(bare.cron, "*/10 * * * *");
    assert.equal(bare.everyMs, undefined);
    assert.deepEqual(bare.metadata, {});
    assert.equal(bare.priority, "normal");

    await assert.rejects(client.updateSchedule({ name: `${name}-missing`, everyMs: HOUR_MS, queue }), notFound);
  });

  test("pauseSchedule stops the ticks until resumeSchedule; each says whether it changed anything", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-pause`;
    await create({ name, everyMs: HOUR_MS, queue });
    assert.equal(await client.pauseSchedule(name), true);
    assert.equal(await client.pauseSchedule(name), false, "paused already");
    const paused = await client.getSchedule(name);
    assert.equal(paused.paused, true);
    assert.equal(paused.nextRunTime, undefined, "no next run while paused");
    assert.ok(!("nextRunTime" in paused));

    const updated = await client.updateSchedule({ name, everyMs: HOUR_MS, queue, metadata: { edited: "yes" } });
    assert.equal(updated.paused, true, "an update keeps the paused state");
    assert.equal(updated.nextRunTime, undefined);

    assert.equal(await client.resumeSchedule(name), true);
    assert.equal(await client.resumeSchedule(name), false, "not paused any more");
    const resumed = await client.getSchedule(name);
    assert.equal(resumed.paused, false);
    assert.ok(resumed.nextRunTime instanceof Date, "a next run again");
    assert.deepEqual(resumed.metadata, { edited: "yes" });
  });

  test("deleteSchedule removes it: then get, delete, pause and resume are ScheduleNotFoundError", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-delete`;
    await create({ name, everyMs: HOUR_MS, queue });
    await client.deleteSchedule(name);
    created.delete(name);
    await assert.rejects(client.getSchedule(name), notFound);
    await assert.rejects(client.deleteSchedule(name), notFound);
    await assert.rejects(client.pauseSchedule(name), notFound);
    await assert.rejects(client.resumeSchedule(name), notFound);
    assert.ok(!(await client.listSchedules()).some((s) => s.name === name), "gone from the list");
  });

  test("creating a name that exists is ScheduleExistsError and changes nothing", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-twice`;
    const first = await create({ name, everyMs: HOUR_MS, queue, metadata: { first: "yes" } });
    await assert.rejects(client.createSchedule({ name, cron: "* * * * *", queue }), (error: unknown) => {
      assert.ok(error instanceof ScheduleExistsError, String(error));
      assert.ok(error instanceof AlreadyExistsError);
      assert.equal(error.reason, "SCHEDULE_EXISTS");
      assert.equal(error.codeName, "ALREADY_EXISTS");
      return true;
    });
    assert.deepEqual(await client.getSchedule(name), first);
  });

  test("a bad definition is InvalidArgumentError naming the field, and creates nothing", async () => {
    const queue = uniqueQueue("node-sched");
    const name = `${queue}-bad`;
    await assert.rejects(client.createSchedule({ name, cron: "not a cron", queue }), invalid("schedule.cron"));
    await assert.rejects(client.createSchedule({ name, cron: "61 * * * *", queue }), invalid("schedule.cron"));
    await assert.rejects(client.createSchedule({ name, everyMs: 500, queue }), invalid("schedule.interval"));
    await assert.rejects(
      client.createSchedule({ name, cron: "0 3 * * *", timeZone: "Mars/Olympus_Mons", queue }),
      invalid("schedule.time_zone"),
    );
    await assert.rejects(
      client.createSchedule({ name, everyMs: HOUR_MS, timeZone: "Europe/Paris", queue }),
      invalid("schedule.time_zone"),
    );
    await assert.rejects(client.createSchedule({ name, everyMs: HOUR_MS, queue: "bad queue" }), invalid("schedule.template.queue"));
    await assert.rejects(client.createSchedule({ name: "bad name!", everyMs: HOUR_MS, queue }), invalid("schedule.name"));
    await assert.rejects(client.getSchedule(name), notFound);
  });
});
