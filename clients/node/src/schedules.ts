/**
 * Schedules (recurring jobs): the public shapes `Client.createSchedule` and its siblings take
 * and return, and their conversions to and from the contract's Schedule message. Plain
 * objects, string unions, milliseconds and Dates, as in types.ts; never the generated types.
 */

import {
  asBuffer,
  backoffPolicy,
  checkDate,
  durationMs,
  priorityName,
  toDuration,
  toJsonObject,
  toPriority,
} from "./convert.js";
import { InternalError, InvalidArgumentError } from "./errors.js";
import type { BackoffPolicy as ProtoBackoff } from "./gen/jobqueue/v1/job.js";
import { Priority as ProtoPriority } from "./gen/jobqueue/v1/job.js";
import { CatchUpPolicy as ProtoCatchUpPolicy, type JobTemplate, type Schedule } from "./gen/jobqueue/v1/job_queue_service.js";
import type { BackoffPolicy, CallOptions, JsonObject, Priority } from "./types.js";

/**
 * Which ticks a schedule makes jobs for when it finds ticks it missed (no server was running,
 * or Redis was unreachable, when they came):
 * - "skip" (the default): missed ticks make no job. A tick is missed when it is more than a
 *   minute late.
 * - "once": the missed ticks make one job together (for the latest of them).
 * - "all": every missed tick makes its own job, oldest first, up to `catchUpLimit` (the
 *   latest ones); older missed ticks make none.
 */
export type CatchUpPolicy = "skip" | "once" | "all";

/**
 * When a schedule ticks: exactly one of
 * - `cron`: a cron expression in `timeZone`: five fields (minute hour day-of-month month
 *   day-of-week), or six with seconds first, or `@hourly`, `@daily`, `@weekly`, `@monthly`,
 *   `@yearly`. Ticks never come closer than one second.
 * - `everyMs`: a fixed interval in ms, at least one second: ticks at `start` plus whole
 *   multiples of it; without `start`, at whole multiples of it since the Unix epoch (an
 *   hourly interval ticks on the hour, UTC).
 */
export type ScheduleTiming = { cron: string; everyMs?: undefined } | { everyMs: number; cron?: undefined };

/**
 * A schedule's name, its job template and its bounds: everything of a {@link ScheduleSpec}
 * but its timing. The job fields mean what `enqueue`'s options of the same names mean.
 */
export interface ScheduleFields {
  /** 1 to 128 of letters, digits, `-`, `_`, `.` and `:`; unique among schedules. */
  name: string;
  /**
   * IANA time zone of a `cron` expression, e.g. `Europe/Paris`; unset: UTC. Ticks follow the
   * zone's wall clock: a time skipped when clocks go forward ticks that much later (02:30
   * becomes 03:30), and a time that happens twice when they go back ticks once, the first
   * time. Not allowed with `everyMs`.
   */
  timeZone?: string;
  /** The queue of the jobs the schedule makes. */
  queue: string;
  /** Each job's payload: a JSON object, or bytes for a binary payload (as `enqueue` takes it). */
  payload?: Record<string, unknown> | Uint8Array;
  /** Default "normal". */
  priority?: Priority;
  /** Deliveries allowed before a job is dead (default: the server's, 3). */
  maxAttempts?: number;
  /** Retry delays after failures; unset fields take the server's defaults. */
  backoff?: BackoffPolicy;
  /** Lease length for each job, overriding the worker's and the server's (30 s). */
  leaseDurationMs?: number;
  /** Longest an attempt of each job may run, in ms (see `enqueue`'s `executionTimeoutMs`); unset: no limit. */
  executionTimeoutMs?: number;
  /** Free-form string pairs carried with each job. */
  metadata?: Record<string, string>;
  /**
   * Each job's unique key (see `enqueue`'s `uniqueKey`): while the job of an earlier tick is
   * still scheduled, queued or active, a tick makes no new job, so ticks do not pile up
   * behind a slow job. Unset: every tick makes its job.
   */
  uniqueKey?: string;
  /**
   * Each job's partition key (see `enqueue`'s `partitionKey`), for a queue split into
   * partitions: the jobs of every tick go to the same partition, leased in tick order.
   * Unset: none.
   */
  partitionKey?: string;
  /** No tick before this time; unset: no lower bound. */
  start?: Date;
  /** No tick after this time; unset: none. */
  end?: Date;
  /** What happens to ticks missed during downtime (default "skip"). */
  catchUp?: CatchUpPolicy;
  /** With catchUp "all", the most missed ticks made up at once: 1 to 1,000 (unset or 0: 100). */
  catchUpLimit?: number;
}

/**
 * A recurring job, as `createSchedule` and `updateSchedule` take it: a name, when it ticks
 * (`cron` or `everyMs`), and the job each tick makes. Each job carries the idempotency key
 * `schedule:<name>:<tick in ms since the epoch>`, so a tick makes one job whichever servers
 * see it.
 *
 * ```ts
 * await admin.createSchedule({ name: "nightly-report", cron: "0 3 * * *", timeZone: "Europe/Paris", queue: "reports", payload: { kind: "daily" } });
 * await admin.createSchedule({ name: "heartbeat", everyMs: 30_000, queue: "pings" });
 * ```
 */
export type ScheduleSpec = ScheduleFields & ScheduleTiming;

/**
 * A schedule as the server stores it: its definition, with the server's defaults filled in,
 * and its state. It is a {@link ScheduleSpec} too: `updateSchedule({ ...info, metadata: { owner: "ops" } })`
 * changes one thing and keeps the rest (the state fields are not sent).
 */
export type ScheduleInfo = ScheduleSpec & {
  /** The JSON object or the bytes each job carries; absent when the template has no payload. */
  payload?: JsonObject | Uint8Array;
  priority: Priority;
  /** 0: the server's default. */
  maxAttempts: number;
  metadata: Record<string, string>;
  catchUp: CatchUpPolicy;
  /** 0: the server's default (100). */
  catchUpLimit: number;
  /** Whether it is paused (`pauseSchedule`): it makes no job until `resumeSchedule`. */
  paused: boolean;
  /** The next tick; absent when paused or past `end`. */
  nextRunTime?: Date;
  /** The latest tick that made a job; absent before the first. */
  lastRunTime?: Date;
  /** The id of the job the latest tick made ("" before the first). */
  lastJobId: string;
  createTime: Date;
  /** The last createSchedule, updateSchedule, pauseSchedule or resumeSchedule. */
  updateTime: Date;
};

/** Options of `listSchedules`. */
export interface ListSchedulesOptions extends CallOptions {
  /** Schedules per call, 1 to 1,000 (default: the server's, 100); `timeoutMs` and `signal` apply to each call. */
  pageSize?: number;
}

/** Where a Schedule's fields are named in errors: the requests carry it as `schedule`. */
export const SCHEDULE_FIELD = "schedule";

const INT32_MAX = 2 ** 31 - 1;

const CATCH_UP: Record<CatchUpPolicy, ProtoCatchUpPolicy> = {
  skip: ProtoCatchUpPolicy.CATCH_UP_POLICY_SKIP,
  once: ProtoCatchUpPolicy.CATCH_UP_POLICY_ONCE,
  all: ProtoCatchUpPolicy.CATCH_UP_POLICY_ALL,
};

const CATCH_UP_NAMES = new Map<ProtoCatchUpPolicy, CatchUpPolicy>([
  [ProtoCatchUpPolicy.CATCH_UP_POLICY_UNSPECIFIED, "skip"],
  ...Object.entries(CATCH_UP).map(([name, proto]): [ProtoCatchUpPolicy, CatchUpPolicy] => [proto, name as CatchUpPolicy]),
]);

/** Throws InvalidArgumentError (field `field`) unless `value` is an integer that fits an int32. */
function checkInt32(value: number, field: string): number {
  if (!Number.isInteger(value) || Math.abs(value) > INT32_MAX) {
    throw new InvalidArgumentError(`${field}: must be an integer`, { field }); // the range is the server's
  }
  return value;
}

/**
 * The Schedule message for a spec. What the wire could not carry as given is refused here
 * with an InvalidArgumentError naming the field as the server does (`schedule.interval`):
 * both or neither of cron and everyMs, a negative or non-finite duration, a payload that is
 * not JSON, an unknown priority or catch-up policy, an invalid Date, a fractional number.
 * The rest (names, the cron expression, the time zone, ranges) is left to the server, which
 * names the field the same way.
 */
export function scheduleMessage(spec: ScheduleSpec, prefix = SCHEDULE_FIELD): Schedule {
  if (typeof spec !== "object" || spec === null) {
    throw new InvalidArgumentError(`${prefix}: must be a schedule`, { field: prefix });
  }
  const field = (name: string): string => `${prefix}.${name}`;
  const hasCron = spec.cron !== undefined;
  const hasEvery = spec.everyMs !== undefined;
  if (hasCron === hasEvery) {
    const problem = hasCron ? "set only one of cron and everyMs" : "set one of cron and everyMs";
    throw new InvalidArgumentError(`${field("cron")}: ${problem}`, { field: field("cron") });
  }
  const message: Schedule = {
    name: spec.name,
    cron: undefined,
    interval: undefined,
    timeZone: spec.timeZone ?? "",
    template: jobTemplate(spec, field("template")),
    startTime: spec.start === undefined ? undefined : checkDate(spec.start, field("start_time")),
    endTime: spec.end === undefined ? undefined : checkDate(spec.end, field("end_time")),
    catchUp: ProtoCatchUpPolicy.CATCH_UP_POLICY_UNSPECIFIED,
    catchUpLimit: spec.catchUpLimit === undefined ? 0 : checkInt32(spec.catchUpLimit, field("catch_up_limit")),
    // Output only: the server ignores them.
    paused: false,
    nextRunTime: undefined,
    lastRunTime: undefined,
    lastJobId: "",
    createTime: undefined,
    updateTime: undefined,
  };
  if (spec.cron !== undefined) {
    if (typeof spec.cron !== "string") {
      throw new InvalidArgumentError(`${field("cron")}: must be a string`, { field: field("cron") });
    }
    message.cron = spec.cron;
  } else if (spec.everyMs !== undefined) {
    message.interval = toDuration(spec.everyMs, field("interval"));
  }
  if (spec.catchUp !== undefined) {
    // Own keys only: JavaScript callers can pass anything, "constructor" included.
    const policy = Object.hasOwn(CATCH_UP, spec.catchUp) ? CATCH_UP[spec.catchUp] : undefined;
    if (policy === undefined) {
      throw new InvalidArgumentError(`${field("catch_up")}: must be "skip", "once" or "all", not ${JSON.stringify(spec.catchUp)}`, {
        field: field("catch_up"),
      });
    }
    message.catchUp = policy;
  }
  return message;
}

/** The JobTemplate of a spec; `prefix` is the template's field (`schedule.template`). */
function jobTemplate(spec: ScheduleFields, prefix: string): JobTemplate {
  const field = (name: string): string => `${prefix}.${name}`;
  const template: JobTemplate = {
    queue: spec.queue,
    payload: undefined,
    payloadBytes: Buffer.alloc(0),
    priority: ProtoPriority.PRIORITY_UNSPECIFIED,
    maxAttempts: spec.maxAttempts ?? 0,
    backoff: undefined,
    leaseDuration: undefined,
    metadata: { ...spec.metadata },
    timeout: undefined,
    uniqueKey: spec.uniqueKey ?? "", // its length bound (256 characters) is the server's
    partitionKey: spec.partitionKey ?? "", // the same for this one's
  };
  if (spec.payload instanceof Uint8Array) template.payloadBytes = asBuffer(spec.payload);
  else if (spec.payload !== undefined && spec.payload !== null) template.payload = toJsonObject(spec.payload, field("payload"));
  if (spec.priority !== undefined) template.priority = toPriority(spec.priority, field("priority"));
  if (spec.backoff !== undefined) template.backoff = backoffPolicy(spec.backoff, field("backoff"));
  if (spec.leaseDurationMs !== undefined) template.leaseDuration = toDuration(spec.leaseDurationMs, field("lease_duration"));
  if (spec.executionTimeoutMs !== undefined) template.timeout = toDuration(spec.executionTimeoutMs, field("timeout"));
  return template;
}

/** The fields of a stored policy that are set (the server's defaults fill the others). */
function backoffOptions(policy: ProtoBackoff): BackoffPolicy {
  const options: BackoffPolicy = {};
  const initial = durationMs(policy.initialDelay);
  const max = durationMs(policy.maxDelay);
  if (initial !== undefined) options.initialDelayMs = initial;
  if (max !== undefined) options.maxDelayMs = max;
  if (policy.multiplier !== 0) options.multiplier = policy.multiplier;
  if (policy.jitter !== 0) options.jitter = policy.jitter;
  if (policy.noJitter) options.noJitter = true;
  return options;
}

/** The public ScheduleInfo for a message; InternalError for one the contract does not allow. */
export function scheduleInfo(message: Schedule): ScheduleInfo {
  const { name, template } = message;
  const missing = (what: string): InternalError => new InternalError(`the server sent no ${what} for schedule ${name}`);
  if (template === undefined) throw missing("template");
  if (message.createTime === undefined) throw missing("create_time");
  if (message.updateTime === undefined) throw missing("update_time");
  const catchUp = CATCH_UP_NAMES.get(message.catchUp);
  if (catchUp === undefined) throw new InternalError(`the server sent an unknown catch-up policy ${message.catchUp} for schedule ${name}`);
  let timing: ScheduleTiming;
  if (message.cron !== undefined) timing = { cron: message.cron };
  else if (message.interval !== undefined) timing = { everyMs: durationMs(message.interval) ?? 0 };
  else throw missing("cron or interval");
  const info: ScheduleInfo = {
    name,
    ...timing,
    queue: template.queue,
    priority: priorityName(template.priority),
    maxAttempts: template.maxAttempts,
    metadata: { ...template.metadata },
    catchUp,
    catchUpLimit: message.catchUpLimit,
    paused: message.paused,
    lastJobId: message.lastJobId,
    createTime: message.createTime,
    updateTime: message.updateTime,
  };
  if (message.timeZone !== "") info.timeZone = message.timeZone;
  if (template.payloadBytes.length > 0) info.payload = template.payloadBytes;
  else if (template.payload !== undefined) info.payload = template.payload as JsonObject;
  if (template.backoff !== undefined) info.backoff = backoffOptions(template.backoff);
  if (template.leaseDuration !== undefined) info.leaseDurationMs = durationMs(template.leaseDuration);
  if (template.timeout !== undefined) info.executionTimeoutMs = durationMs(template.timeout);
  if (template.uniqueKey !== "") info.uniqueKey = template.uniqueKey;
  if (template.partitionKey !== "") info.partitionKey = template.partitionKey;
  if (message.startTime !== undefined) info.start = message.startTime;
  if (message.endTime !== undefined) info.end = message.endTime;
  if (message.nextRunTime !== undefined) info.nextRunTime = message.nextRunTime;
  if (message.lastRunTime !== undefined) info.lastRunTime = message.lastRunTime;
  return info;
}
