/** Conversions between the public plain-object API and the generated messages. */

import type { Duration } from "./gen/google/protobuf/duration.js";
import {
  DependencyFailurePolicy as ProtoDependencyFailurePolicy,
  JobState as ProtoJobState,
  Priority as ProtoPriority,
  type BackoffPolicy as ProtoBackoff,
  type Job as ProtoJob,
  type QueueLimits as ProtoQueueLimits,
  type QueueStats as ProtoQueueStats,
} from "./gen/jobqueue/v1/job.js";
import { Durability as ProtoDurability } from "./gen/jobqueue/v1/job.js";
import {
  TokenRole as ProtoTokenRole,
  type CreateQueueRequest,
  type CreateTokenRequest,
  type CreateWebhookRequest,
  type EnqueueRequest,
  type TokenInfo as ProtoTokenInfo,
  type Webhook as ProtoWebhook,
} from "./gen/jobqueue/v1/job_queue_service.js";
import { InternalError, InvalidArgumentError } from "./errors.js";
import type {
  BackoffPolicy,
  CreateWebhookOptions,
  DependencyFailurePolicy,
  Durability,
  EnqueueOptions,
  Job,
  JobSpec,
  JobState,
  JsonObject,
  JsonValue,
  Priority,
  QueueLimits,
  QueueStats,
  TokenInfo,
  TokenRole,
  Webhook,
} from "./types.js";

/** The queue-name grammar of the contract (EnqueueRequest.queue). */
export const QUEUE_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const QUEUE_GRAMMAR = "1 to 128 of letters, digits, '-', '_', '.' and ':'";
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const STATES = new Map<ProtoJobState, JobState>([
  [ProtoJobState.JOB_STATE_WAITING, "waiting"],
  [ProtoJobState.JOB_STATE_SCHEDULED, "scheduled"],
  [ProtoJobState.JOB_STATE_QUEUED, "queued"],
  [ProtoJobState.JOB_STATE_ACTIVE, "active"],
  [ProtoJobState.JOB_STATE_COMPLETED, "completed"],
  [ProtoJobState.JOB_STATE_DEAD, "dead"],
  [ProtoJobState.JOB_STATE_CANCELLED, "cancelled"],
]);

const PROTO_STATES = new Map<JobState, ProtoJobState>([...STATES].map(([proto, name]) => [name, proto]));

const DURABILITIES: Record<Durability, ProtoDurability> = {
  applied: ProtoDurability.DURABILITY_APPLIED,
  fsynced: ProtoDurability.DURABILITY_FSYNCED,
  replicated: ProtoDurability.DURABILITY_REPLICATED,
};

const PRIORITIES: Record<Priority, ProtoPriority> = {
  low: ProtoPriority.PRIORITY_LOW,
  normal: ProtoPriority.PRIORITY_NORMAL,
  high: ProtoPriority.PRIORITY_HIGH,
};

const DEPENDENCY_FAILURE_POLICIES: Record<DependencyFailurePolicy, ProtoDependencyFailurePolicy> = {
  cancel: ProtoDependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_CANCEL,
  dead_letter: ProtoDependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER,
  run_anyway: ProtoDependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
};

const DEPENDENCY_FAILURE_POLICY_NAMES = new Map<ProtoDependencyFailurePolicy, DependencyFailurePolicy>(
  Object.entries(DEPENDENCY_FAILURE_POLICIES).map(([name, proto]) => [proto, name as DependencyFailurePolicy]),
);

const TOKEN_ROLES: Record<TokenRole, ProtoTokenRole> = {
  producer: ProtoTokenRole.TOKEN_ROLE_PRODUCER,
  worker: ProtoTokenRole.TOKEN_ROLE_WORKER,
  admin: ProtoTokenRole.TOKEN_ROLE_ADMIN,
};

const TOKEN_ROLE_NAMES = new Map<ProtoTokenRole, TokenRole>(
  Object.entries(TOKEN_ROLES).map(([name, proto]) => [proto, name as TokenRole]),
);

/** Throws InvalidArgumentError (field `field`) unless `queue` fits the contract's grammar. */
export function checkQueueName(queue: string, field = "queue"): void {
  if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
    throw new InvalidArgumentError(`${field}: queue name ${JSON.stringify(queue)} must be ${QUEUE_GRAMMAR}`, { field });
  }
}

/** The wire level for a durability option; unset is the server's default. */
export function toDurability(value: Durability | undefined, field: string): ProtoDurability {
  if (value === undefined) return ProtoDurability.DURABILITY_UNSPECIFIED;
  // Own keys only: JavaScript callers can pass anything, "constructor" included.
  const level = Object.hasOwn(DURABILITIES, value) ? DURABILITIES[value] : undefined;
  if (level === undefined) throw new InvalidArgumentError(`${field}: must be "applied", "fsynced" or "replicated"`, { field });
  return level;
}

/** The wire level for a priority name. */
export function toPriority(priority: Priority, field = "priority"): ProtoPriority {
  // Own keys only, as for durabilities.
  const proto = Object.hasOwn(PRIORITIES, priority) ? PRIORITIES[priority] : undefined;
  if (proto === undefined) throw new InvalidArgumentError(`${field}: must be "low", "normal" or "high"`, { field });
  return proto;
}

/** The wire policy for a policy name; unset is the server's default (cancel). */
export function toDependencyFailurePolicy(
  policy: DependencyFailurePolicy | undefined,
  field = "on_dependency_failure",
): ProtoDependencyFailurePolicy {
  if (policy === undefined) return ProtoDependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED;
  // Own keys only, as for durabilities.
  const proto = Object.hasOwn(DEPENDENCY_FAILURE_POLICIES, policy) ? DEPENDENCY_FAILURE_POLICIES[policy] : undefined;
  if (proto === undefined) {
    throw new InvalidArgumentError(`${field}: must be "cancel", "dead_letter" or "run_anyway", not ${JSON.stringify(policy)}`, { field });
  }
  return proto;
}

/** The wire state for a state name (ListJobs). */
export function toJobState(state: JobState, field = "state"): ProtoJobState {
  const proto = PROTO_STATES.get(state);
  if (proto === undefined) {
    throw new InvalidArgumentError(`${field}: must be one of ${[...PROTO_STATES.keys()].join(", ")}`, { field });
  }
  return proto;
}

/** The wire role for a role name (CreateToken). */
export function toTokenRole(role: TokenRole, field = "role"): ProtoTokenRole {
  // Own keys only, as for durabilities.
  const proto = Object.hasOwn(TOKEN_ROLES, role) ? TOKEN_ROLES[role] : undefined;
  if (proto === undefined) {
    throw new InvalidArgumentError(`${field}: must be "producer", "worker" or "admin", not ${JSON.stringify(role)}`, { field });
  }
  return proto;
}

// -- JSON values ------------------------------------------------------------------------

/**
 * A plain JSON copy of `value` following JSON.stringify's rules (toJSON, undefined members
 * dropped), except that what JSON would silently lose is refused: non-finite numbers,
 * bigints, and cycles. Throws InvalidArgumentError naming the path.
 */
export function toJsonObject(value: unknown, path: string): JsonObject {
  const json = toJsonValue(value, path, new Set());
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new InvalidArgumentError(`${path}: must be a JSON object`, { field: path });
  }
  return json;
}

function toJsonValue(value: unknown, path: string, seen: Set<object>): JsonValue {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidArgumentError(`${path}: ${value} is not a JSON number`, { field: path });
    return value;
  }
  if (typeof value === "bigint") {
    throw new InvalidArgumentError(`${path}: bigint is not a JSON value (Struct numbers are doubles)`, { field: path });
  }
  if (typeof value !== "object") {
    throw new InvalidArgumentError(`${path}: a ${typeof value} is not a JSON value`, { field: path });
  }
  const withToJson = value as { toJSON?: unknown };
  if (typeof withToJson.toJSON === "function") {
    return toJsonValue((withToJson.toJSON as () => unknown).call(value), path, seen);
  }
  if (seen.has(value)) throw new InvalidArgumentError(`${path}: is circular`, { field: path });
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((item, index) =>
        item === undefined || typeof item === "function" || typeof item === "symbol"
          ? null
          : toJsonValue(item, `${path}[${index}]`, seen),
      );
    }
    if (ArrayBuffer.isView(value)) {
      throw new InvalidArgumentError(`${path}: bytes are not a JSON value`, { field: path });
    }
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
      out[key] = toJsonValue(item, `${path}.${key}`, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

// -- durations and times ----------------------------------------------------------------

export function toDuration(ms: number, field: string): Duration {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidArgumentError(`${field}: must be a non-negative number of milliseconds`, { field });
  }
  const whole = Math.round(ms * 1_000_000); // ns, exact for any sane duration
  return { seconds: Math.floor(whole / 1e9), nanos: whole % 1e9 };
}

export function durationMs(duration: Duration | undefined): number | undefined {
  if (duration === undefined) return undefined;
  return duration.seconds * 1000 + Math.floor(duration.nanos / 1e6);
}

/** `date`, unless it is not a valid Date (InvalidArgumentError naming `field`). */
export function checkDate(date: Date, field: string): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new InvalidArgumentError(`${field}: must be a valid Date`, { field });
  }
  return date;
}

// -- requests ---------------------------------------------------------------------------

/** A Buffer over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The wire policy; `field` names the policy in errors (`backoff`, `requests[3].backoff`). */
export function backoffPolicy(policy: BackoffPolicy, field: string): ProtoBackoff {
  const message: ProtoBackoff = {
    initialDelay: undefined,
    maxDelay: undefined,
    multiplier: policy.multiplier ?? 0,
    jitter: policy.jitter ?? 0,
    noJitter: policy.noJitter ?? false,
  };
  if (policy.initialDelayMs !== undefined) message.initialDelay = toDuration(policy.initialDelayMs, `${field}.initial_delay`);
  if (policy.maxDelayMs !== undefined) message.maxDelay = toDuration(policy.maxDelayMs, `${field}.max_delay`);
  return message;
}

/** An EnqueueRequest; `prefix` places field names inside a batch (`requests[3].`). */
export function enqueueRequest(spec: JobSpec, prefix = ""): EnqueueRequest {
  // The queue name is left to the server, which names the field the same way.
  const options: EnqueueOptions = spec;
  const request: EnqueueRequest = {
    queue: spec.queue,
    payload: undefined,
    payloadBytes: Buffer.alloc(0),
    priority: ProtoPriority.PRIORITY_UNSPECIFIED,
    delay: undefined,
    scheduleTime: undefined,
    maxAttempts: options.maxAttempts ?? 0,
    backoff: undefined,
    idempotencyKey: options.idempotencyKey ?? "",
    leaseDuration: undefined,
    metadata: { ...options.metadata },
    durability: toDurability(options.durability, `${prefix}durability`),
    timeout: undefined,
    startDeadline: undefined,
    // The length bound (256 characters) is the server's, which names the field the same way.
    uniqueKey: options.uniqueKey ?? "",
    // The same for the group key's bound (256 characters).
    groupKey: options.groupKey ?? "",
    // And for the partition key's (256 characters).
    partitionKey: options.partitionKey ?? "",
    // The ids' grammar, their number (at most 1,000) and whether they exist are the server's.
    dependsOn: stringList(options.dependsOn, `${prefix}depends_on`),
    onDependencyFailure: toDependencyFailurePolicy(options.onDependencyFailure, `${prefix}on_dependency_failure`),
    // Refs only mean something inside one batch request: the server checks their grammar,
    // that each is known and unique, and that they form no cycle.
    ref: spec.ref ?? "",
    dependsOnRefs: stringList(spec.dependsOnRefs, `${prefix}depends_on_refs`),
  };
  if (spec.payload instanceof Uint8Array) request.payloadBytes = asBuffer(spec.payload);
  else if (spec.payload !== undefined && spec.payload !== null) request.payload = toJsonObject(spec.payload, `${prefix}payload`);
  if (options.priority !== undefined) request.priority = toPriority(options.priority, `${prefix}priority`);
  if (options.delayMs !== undefined && options.runAt !== undefined) {
    throw new InvalidArgumentError(`${prefix}delay: set at most one of delayMs and runAt`, { field: `${prefix}delay` });
  }
  if (options.delayMs !== undefined) request.delay = toDuration(options.delayMs, `${prefix}delay`);
  if (options.runAt !== undefined) request.scheduleTime = checkDate(options.runAt, `${prefix}schedule_time`);
  if (options.backoff !== undefined) request.backoff = backoffPolicy(options.backoff, `${prefix}backoff`);
  if (options.leaseDurationMs !== undefined) {
    request.leaseDuration = toDuration(options.leaseDurationMs, `${prefix}lease_duration`);
  }
  // The range (1 s to 7 days) is the server's, which names the field the same way.
  if (options.executionTimeoutMs !== undefined) request.timeout = toDuration(options.executionTimeoutMs, `${prefix}timeout`);
  if (options.startDeadline !== undefined) request.startDeadline = checkDate(options.startDeadline, `${prefix}start_deadline`);
  return request;
}

/** True when `request` uses batch-local refs (`ref` or `depends_on_refs`). */
export function usesRefs(request: EnqueueRequest): boolean {
  return request.ref !== "" || request.dependsOnRefs.length > 0;
}

/**
 * A copy of a list of strings (job ids, refs), or [] when unset. What the wire cannot carry is
 * refused, naming `field` (or `field[i]`): a string would be sent as one entry per character.
 */
function stringList(list: readonly string[] | undefined, field: string): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new InvalidArgumentError(`${field}: must be an array of strings`, { field });
  return list.map((item: unknown, index) => {
    if (typeof item !== "string") {
      throw new InvalidArgumentError(`${field}[${index}]: must be a string`, { field: `${field}[${index}]` });
    }
    return item;
  });
}

/**
 * A CreateTokenRequest. The role, the list and the ttl's sign are checked here; the name
 * and the queue patterns are left to the server, which names the field the same way.
 */
export function createTokenRequest(name: string, role: TokenRole, queues: readonly string[], ttlMs?: number): CreateTokenRequest {
  // A string would be sent as one pattern per character.
  if (!Array.isArray(queues)) throw new InvalidArgumentError("queues: must be an array of queue patterns", { field: "queues" });
  return {
    name,
    role: toTokenRole(role),
    queues: [...queues],
    ttl: ttlMs === undefined ? undefined : toDuration(ttlMs, "ttl"),
  };
}

/**
 * A CreateQueueRequest. A partition count the wire cannot carry (not an int32) is refused
 * here, naming `partitions`; the queue's grammar and the range (1 to 64; 0 means 1) are left
 * to the server, which names the field the same way.
 */
export function createQueueRequest(queue: string, partitions: number): CreateQueueRequest {
  return { queue, partitions: int32(partitions, "partitions") };
}

/** Where a Webhook's fields are named in errors: CreateWebhookRequest carries it as `webhook`. */
export const WEBHOOK_FIELD = "webhook";

/**
 * A CreateWebhookRequest. What the wire could not carry as given is refused here with an
 * InvalidArgumentError naming the field as the server does (`webhook.oldest_job_age`): a URL
 * or queue that is not a string, a negative or non-finite age, a dead-job count that is not
 * an integer, an allowPrivateNetwork that is not a boolean. The rest (the URL's form and
 * addresses, the queue's grammar, the ranges) is left to the server, which names the field
 * the same way.
 */
export function createWebhookRequest(url: string, options: CreateWebhookOptions = {}): CreateWebhookRequest {
  const field = (name: string): string => `${WEBHOOK_FIELD}.${name}`;
  if (typeof url !== "string") throw new InvalidArgumentError(`${field("url")}: must be a string`, { field: field("url") });
  const { queue, oldestJobAgeMs, deadJobs, allowPrivateNetwork } = options;
  if (queue !== undefined && typeof queue !== "string") {
    throw new InvalidArgumentError(`${field("queue")}: must be a queue name`, { field: field("queue") });
  }
  // int64 on the wire; the sign is the server's.
  if (deadJobs !== undefined && !Number.isSafeInteger(deadJobs)) {
    throw new InvalidArgumentError(`${field("dead_jobs")}: must be an integer`, { field: field("dead_jobs") });
  }
  if (allowPrivateNetwork !== undefined && typeof allowPrivateNetwork !== "boolean") {
    throw new InvalidArgumentError(`${field("allow_private_network")}: must be a boolean`, { field: field("allow_private_network") });
  }
  return {
    webhook: {
      url,
      queue: queue ?? "",
      // Its range (1 s to 7 days) is the server's.
      oldestJobAge: oldestJobAgeMs === undefined ? undefined : toDuration(oldestJobAgeMs, field("oldest_job_age")),
      deadJobs: deadJobs ?? 0,
      allowPrivateNetwork: allowPrivateNetwork ?? false,
      // Set by the server.
      id: "",
      createTime: undefined,
    },
  };
}

// -- responses --------------------------------------------------------------------------

export function jobState(state: ProtoJobState): JobState {
  const name = STATES.get(state);
  if (name === undefined) throw new Error(`the server sent an unknown job state ${state}`);
  return name;
}

/** The policy name for a wire policy; undefined when unset (the default, cancel). */
export function dependencyFailurePolicyName(policy: ProtoDependencyFailurePolicy): DependencyFailurePolicy | undefined {
  if (policy === ProtoDependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED) return undefined;
  const name = DEPENDENCY_FAILURE_POLICY_NAMES.get(policy);
  if (name === undefined) throw new Error(`the server sent an unknown dependency failure policy ${policy}`);
  return name;
}

export function priorityName(priority: ProtoPriority): Priority {
  if (priority === ProtoPriority.PRIORITY_LOW) return "low";
  if (priority === ProtoPriority.PRIORITY_HIGH) return "high";
  return "normal";
}

function fullBackoff(policy: ProtoBackoff | undefined): Required<BackoffPolicy> {
  return {
    initialDelayMs: durationMs(policy?.initialDelay) ?? 0,
    maxDelayMs: durationMs(policy?.maxDelay) ?? 0,
    multiplier: policy?.multiplier ?? 0,
    jitter: policy?.jitter ?? 0,
    noJitter: policy?.noJitter ?? false,
  };
}

/** The public Job for a message. Struct payloads and results arrive as plain objects. */
export function job(message: ProtoJob): Job {
  const read: Job = {
    id: message.id,
    queue: message.queue,
    state: jobState(message.state),
    payload: (message.payload as JsonObject | undefined) ?? {},
    payloadBytes: message.payloadBytes,
    priority: priorityName(message.priority),
    attempts: message.attempts,
    maxAttempts: message.maxAttempts,
    createTime: message.createTime,
    scheduleTime: message.scheduleTime,
    startTime: message.startTime,
    finishTime: message.finishTime,
    result: message.result as JsonObject | undefined,
    lastError: message.lastError,
    errors: message.errors.map((e) => ({ attempt: e.attempt, message: e.message, time: e.time })),
    metadata: { ...message.metadata },
    leaseDurationMs: durationMs(message.leaseDuration),
    backoff: fullBackoff(message.backoff),
    idempotencyKey: message.idempotencyKey,
    workerId: message.workerId,
    executionTimeoutMs: durationMs(message.timeout),
    startDeadline: message.startDeadline,
    progress:
      message.progress === undefined
        ? undefined
        : { percent: message.progress.percent, message: message.progress.message, time: message.progress.time },
    logs: message.logs.map((entry) => ({ line: entry.line, time: entry.time })),
    uniqueKey: message.uniqueKey === "" ? undefined : message.uniqueKey,
    dependsOn: [...message.dependsOn],
  };
  const policy = dependencyFailurePolicyName(message.onDependencyFailure);
  if (policy !== undefined) read.onDependencyFailure = policy;
  if (message.groupKey !== "") read.groupKey = message.groupKey;
  return read;
}

export function queueStats(message: ProtoQueueStats): QueueStats {
  const stats: QueueStats = {
    queue: message.queue,
    queued: message.queued,
    scheduled: message.scheduled,
    active: message.active,
    completed: message.completed,
    dead: message.dead,
    cancelled: message.cancelled,
    waiting: message.waiting,
    oldestQueuedAgeMs: durationMs(message.oldestQueuedAge) ?? 0,
    paused: message.paused,
    // A server older than partitioned queues sends none: each of its queues is one partition.
    partitions: message.partitions === 0 ? 1 : message.partitions,
  };
  if (message.limits !== undefined) stats.limits = queueLimits(message.limits);
  return stats;
}

/** The public QueueLimits of a message. */
export function queueLimits(message: ProtoQueueLimits): QueueLimits {
  return {
    ratePerSecond: message.ratePerSecond,
    burst: message.burst,
    maxActive: message.maxActive,
    groupRatePerSecond: message.groupRatePerSecond,
    groupBurst: message.groupBurst,
    groupMaxActive: message.groupMaxActive,
  };
}

/**
 * The wire limits (SetQueueLimits); an omitted limit is 0. What the wire cannot carry is
 * refused here (a rate that is not a number, a burst or max_active that is not an int32,
 * the group ones alike); the ranges, and a burst without its rate, are the server's, which
 * names the fields the same way (`limits.burst`, `limits.group_burst`).
 */
export function queueLimitsMessage(limits: Partial<QueueLimits>, prefix = "limits."): ProtoQueueLimits {
  if (limits === null || typeof limits !== "object") {
    const field = prefix.replace(/\.$/, "");
    throw new InvalidArgumentError(`${field}: must be an object ({} removes the limits)`, { field });
  }
  return {
    ratePerSecond: rate(limits.ratePerSecond ?? 0, `${prefix}rate_per_second`),
    burst: int32(limits.burst ?? 0, `${prefix}burst`),
    maxActive: int32(limits.maxActive ?? 0, `${prefix}max_active`),
    groupRatePerSecond: rate(limits.groupRatePerSecond ?? 0, `${prefix}group_rate_per_second`),
    groupBurst: int32(limits.groupBurst ?? 0, `${prefix}group_burst`),
    groupMaxActive: int32(limits.groupMaxActive ?? 0, `${prefix}group_max_active`),
  };
}

/** `value`, unless it is not a number (InvalidArgumentError naming `field`); its range is the server's. */
function rate(value: number, field: string): number {
  if (typeof value !== "number") throw new InvalidArgumentError(`${field}: must be a number`, { field });
  return value;
}

/** `value`, unless it is not an int32 (InvalidArgumentError naming `field`). */
function int32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    throw new InvalidArgumentError(`${field}: must be an integer`, { field });
  }
  return value;
}

/** The public TokenInfo for a message; InternalError for a role this library does not know. */
export function tokenInfo(message: ProtoTokenInfo): TokenInfo {
  const role = TOKEN_ROLE_NAMES.get(message.role);
  if (role === undefined) throw new InternalError(`the server sent an unknown token role ${message.role} (token ${message.tokenId})`);
  if (message.createTime === undefined) throw new InternalError(`the server sent no create_time for token ${message.tokenId}`);
  const info: TokenInfo = {
    id: message.tokenId,
    name: message.name,
    role,
    queues: [...message.queues],
    createTime: message.createTime,
  };
  if (message.expireTime !== undefined) info.expireTime = message.expireTime;
  return info;
}

/** The public Webhook for a message; InternalError when it has no create time. */
export function webhookInfo(message: ProtoWebhook): Webhook {
  if (message.createTime === undefined) throw new InternalError(`the server sent no create_time for webhook ${message.id}`);
  const info: Webhook = {
    id: message.id,
    url: message.url,
    deadJobs: message.deadJobs,
    allowPrivateNetwork: message.allowPrivateNetwork,
    createTime: message.createTime,
  };
  if (message.queue !== "") info.queue = message.queue;
  if (message.oldestJobAge !== undefined) info.oldestJobAgeMs = durationMs(message.oldestJobAge);
  return info;
}
