/**
 * The public shapes of the client: plain objects, string unions and Dates, never the
 * generated protobuf types.
 */

/** A JSON object: what a job's payload and result are (carried as google.protobuf.Struct). */
export type JsonObject = { [key: string]: JsonValue };
/** A JSON value. Numbers travel as doubles: integers beyond 2^53 cannot be represented. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** Priority level inside one queue: every high job is leased before any normal one. */
export type Priority = "low" | "normal" | "high";

/**
 * When the server answers a write: "applied" once Redis applied it, "fsynced" once it is
 * also on Redis's disk (append-only file), which survives a power loss, "replicated" once
 * it reached the primary's replicas (WAIT), which survives a failover. Unset: the
 * server's default level (docs/durability.md).
 */
export type Durability = "applied" | "fsynced" | "replicated";

/**
 * Where a job is in its life cycle. "waiting": it waits for the jobs it depends on
 * (`dependsOn`), and becomes queued (or scheduled) once every one of them completed.
 */
export type JobState = "waiting" | "scheduled" | "queued" | "active" | "completed" | "dead" | "cancelled";

/** The states a job does not leave on its own. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(["completed", "dead", "cancelled"]);

/** True when the job is completed, dead or cancelled. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * What becomes of a waiting job when a job it depends on ends dead or cancelled instead of
 * completed: "cancel" (the default) ends it cancelled with the error
 * "dependency <job id> ended <STATE>" (the jobs that depend on it then follow their own
 * policies); "dead_letter" ends it dead with the same error, where `retry` can redrive it;
 * "run_anyway" counts the failed dependency as done (the job runs once every dependency has
 * ended, whatever the outcome).
 */
export type DependencyFailurePolicy = "cancel" | "dead_letter" | "run_anyway";

/**
 * How long a failed job waits before its next attempt:
 * min(maxDelayMs, initialDelayMs * multiplier^(failures - 1)), less a random fraction up to
 * `jitter`. Unset fields take the server's defaults (1 s, 1 h, 2, 0.2).
 */
export interface BackoffPolicy {
  initialDelayMs?: number;
  maxDelayMs?: number;
  multiplier?: number;
  /** Fraction (0 to 1) of each delay that is randomly taken off. */
  jitter?: number;
  /** Exact delays, without the random part. */
  noJitter?: boolean;
}

/** Per-call options every client method accepts. */
export interface CallOptions {
  /** The call's deadline, sent to the server (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Cancels the call; the returned promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** How to run one job. */
export interface EnqueueOptions {
  /** Default "normal". */
  priority?: Priority;
  /** Run no earlier than this many milliseconds from now. At most one of delayMs and runAt. */
  delayMs?: number;
  /** Run no earlier than this time. */
  runAt?: Date;
  /** Deliveries allowed before the job is dead (default: the server's, 3). */
  maxAttempts?: number;
  /** A second enqueue with the same key on the same queue (within 24 h) returns the first job. */
  idempotencyKey?: string;
  /**
   * At most 256 characters. While a job of the same queue with this key is scheduled, queued
   * or active, an enqueue with it returns that job (`duplicate` true) and creates nothing,
   * however long ago it was enqueued. Once that job has ended, the key is free again: unlike
   * `idempotencyKey`, it does not outlive the job.
   */
  uniqueKey?: string;
  /**
   * The job's group (at most 256 characters): a key you choose, such as the customer or the
   * recipients' mail domain. A queue serves its groups round-robin, each lease taking one
   * ready job from the next group in turn, so a group with 10,000 jobs waiting does not hold
   * back one with 10; jobs without a group take their turn together as one more group. The
   * queue's group limits (`groupRatePerSecond`, `groupBurst`, `groupMaxActive` of
   * `setQueueLimits`) bound each group separately. Unset: no group.
   */
  groupKey?: string;
  /**
   * The job's partition key (at most 256 characters), for a queue split into partitions
   * (`createQueue`): jobs with the same key go to the same partition, so they are leased in
   * the order they were enqueued (first in, first out per key, as in one queue). Unset: the
   * partition its `groupKey`, `uniqueKey` or `idempotencyKey` names (so those keep working
   * across the queue), else the next partition in turn. Adding partitions moves keys: order
   * per key holds among the jobs enqueued after that. Ignored on a queue with one partition.
   */
  partitionKey?: string;
  /** Lease length for this job, overriding the worker's and the server's (30 s). */
  leaseDurationMs?: number;
  /**
   * Longest an attempt may run, in ms (1 s to 7 days): past it the worker running the job is
   * told to stop (its handler's `ctx.signal` aborts with a JobStoppedError, reason
   * "timed_out") and the attempt fails with "timed out after N s", retried or dead like any
   * failure, however often the lease was extended. Unset: no limit.
   */
  executionTimeoutMs?: number;
  /**
   * A job not leased by this time ends cancelled, with the error "not started before its
   * start deadline". Unset: none.
   */
  startDeadline?: Date;
  /** Free-form string pairs carried with the job (trace context, tenant, ...). */
  metadata?: Record<string, string>;
  /** Retry delays after failures. */
  backoff?: BackoffPolicy;
  /** When the server answers (default: the server's level). In a batch, the strictest level wins. */
  durability?: Durability;
  /**
   * Jobs (ids, in any queue; at most 1,000) that must be completed before this one runs: it
   * is "waiting" until the last of them completes, then queued (or scheduled, while its delay
   * has not run yet); at once if they all completed already. Each must exist: an unknown id
   * is a NotFoundError naming the field (`depends_on[2]`). Its handler reads their results
   * with `getStatus` on each id of `job.dependsOn`.
   */
  dependsOn?: readonly string[];
  /** What happens to this job when one of its dependencies ends dead or cancelled (default "cancel"). */
  onDependencyFailure?: DependencyFailurePolicy;
}

/** Options of `enqueueBatch`. */
export interface EnqueueBatchOptions extends CallOptions {
  /** The level for the whole batch; a job's own `durability` may only make it stricter. */
  durability?: Durability;
}

/**
 * How `Client.enqueue` gathers concurrent calls into batches. Batches go as messages on one
 * EnqueueStream per client: full at 32 jobs (or `maxJobs`, if fewer), up to 64 unanswered at
 * once. A server without EnqueueStream gets EnqueueBatch calls instead: full at `maxJobs`, at
 * most two in flight. A batch leaves when no batch is in flight (as soon as the one in flight
 * is answered), when it is full (while a slot is free), or when its first job has waited
 * `lingerMs` (then beside the ones in flight), whichever comes first.
 */
export interface BatchingOptions {
  /**
   * Jobs per batch (default 1,000, a server's default `max_batch`): per EnqueueBatch call; a
   * stream message holds at most 32 whatever this says, fewer if this is lower.
   */
  maxJobs?: number;
  /** Encoded bytes per batch (default 4 MiB); a larger job goes alone. */
  maxBytes?: number;
  /** How long a batch waits for those in flight to be answered before it goes beside them (default 5 ms). */
  lingerMs?: number;
}

/**
 * Options of `listJobs`. The filters (`createdAfter`, `createdBefore`, `metadata`) are
 * applied by the server; with any of them set, each call examines at most 5,000 jobs, so a
 * page may hold fewer jobs than `pageSize`, even none, and `listJobs` just calls again.
 */
export interface ListJobsOptions extends CallOptions {
  /** Jobs per call, 1 to 1,000 (default 100); `timeoutMs` and `signal` apply to each call. */
  pageSize?: number;
  /** Only jobs enqueued (`createTime`, the server's clock, to the ms) at or after this time. Unset: no lower bound. */
  createdAfter?: Date;
  /** Only jobs enqueued before this time; with `createdAfter`, it must be later. Unset: no upper bound. */
  createdBefore?: Date;
  /** Only jobs whose `metadata` holds every one of these pairs (at most 16). Unset or empty: any metadata. */
  metadata?: Record<string, string>;
}

/** One job of an `enqueueBatch` call. */
export interface JobSpec extends EnqueueOptions {
  queue: string;
  /** A JSON object, or bytes for a binary payload. */
  payload?: Record<string, unknown> | Uint8Array;
  /**
   * A name for this job inside its `enqueueBatch` call (1 to 128 characters, unique in the
   * call), by which other jobs of the call depend on it (`dependsOnRefs`) before it has an id.
   * Only `enqueueBatch` takes it: `enqueue` refuses it.
   */
  ref?: string;
  /**
   * The `ref`s of jobs of the same `enqueueBatch` call this one depends on, in addition to
   * `dependsOn`. An unknown ref (`requests[i].depends_on_refs[j]`), a ref given twice
   * (`requests[i].ref`) or refs that form a cycle (`requests[i].depends_on_refs`) make the
   * server refuse the whole call with an InvalidArgumentError naming that field, and nothing
   * of it is written. A batch that uses refs must fit in one EnqueueBatch call: at most
   * 1,000 jobs (`MAX_BATCH`), or it is refused before anything is sent.
   */
  dependsOnRefs?: readonly string[];
}

/** The answer to an enqueue. */
export interface EnqueueResult {
  jobId: string;
  /**
   * True when the idempotency key matched an earlier job, or the unique key a pending or
   * running one: `jobId` is that job's and nothing new was created.
   */
  duplicate: boolean;
}

/** One failed attempt. */
export interface JobError {
  /** The attempt that failed, counted from 1. */
  attempt: number;
  message: string;
  time: Date | undefined;
}

/** How far a running job said it is (`ctx.progress` in its handler). */
export interface JobProgress {
  /** 0 to 100. */
  percent: number;
  /** What it is doing ("" when it did not say). */
  message: string;
  /** When it was reported. */
  time: Date | undefined;
}

/** One line a job's handler logged (`ctx.log`). */
export interface JobLogLine {
  line: string;
  /** When the server received it. */
  time: Date | undefined;
}

/** A job and everything the queue knows about it. */
export interface Job {
  /** `<queue>:<26-character sortable id>`. */
  id: string;
  queue: string;
  state: JobState;
  /** The JSON payload (empty when the job carries only bytes). */
  payload: JsonObject;
  /** The binary payload (empty when none was given). */
  payloadBytes: Uint8Array;
  priority: Priority;
  /** Deliveries so far (counted when the job is leased). */
  attempts: number;
  maxAttempts: number;
  createTime: Date | undefined;
  /** When the job becomes (or became) ready: delayed jobs and retries. */
  scheduleTime: Date | undefined;
  /** When the current or last attempt was leased. */
  startTime: Date | undefined;
  /** When the job reached completed, dead or cancelled. */
  finishTime: Date | undefined;
  /** What the worker returned with its ack (completed jobs). */
  result: JsonObject | undefined;
  lastError: string;
  /** One entry per failed attempt, oldest first. */
  errors: JobError[];
  metadata: Record<string, string>;
  /** The job's own lease length, when it was enqueued with one. */
  leaseDurationMs: number | undefined;
  /** The retry policy in force, with the server's defaults filled in. */
  backoff: Required<BackoffPolicy>;
  idempotencyKey: string;
  /** The unique key it was enqueued with; unset when none. */
  uniqueKey: string | undefined;
  /** The worker holding the current lease (active jobs only). */
  workerId: string;
  /** Longest an attempt may run, when the job was enqueued with `executionTimeoutMs`. */
  executionTimeoutMs: number | undefined;
  /** When it was enqueued with one: not leased by then, the job ends cancelled. */
  startDeadline: Date | undefined;
  /** The latest progress its handler reported, if any. */
  progress: JobProgress | undefined;
  /** The last 100 lines its handlers logged, oldest first. */
  logs: JobLogLine[];
  /**
   * The jobs this one waited for (`dependsOn` at enqueue, batch refs resolved to ids); empty
   * when none. A handler reads their results with `getStatus` on each.
   */
  dependsOn: string[];
  /**
   * Its policy when a dependency fails, as given at enqueue; unset when it has no
   * dependencies or took the default ("cancel").
   */
  onDependencyFailure?: DependencyFailurePolicy;
  /** The group it was enqueued with (`groupKey`); unset when none. */
  groupKey?: string;
}

/** Counts of one queue's jobs by state. */
export interface QueueStats {
  queue: string;
  queued: number;
  scheduled: number;
  active: number;
  /** Completed jobs still inside the retention window. */
  completed: number;
  dead: number;
  cancelled: number;
  /** Jobs waiting for the jobs they depend on. */
  waiting: number;
  /** Age of the oldest ready job (0 when none is ready). */
  oldestQueuedAgeMs: number;
  /** Whether the queue is paused (`pauseQueue`): its ready jobs are not leased until `resumeQueue`. */
  paused: boolean;
  /** How many partitions the queue has (`createQueue`); 1 for a queue that was never split. */
  partitions: number;
  /** The queue's flow limits (`setQueueLimits`); undefined when it has none. */
  limits?: QueueLimits;
}

/** What `createQueue` resolved to: the queue as it is now. */
export interface CreateQueueResult {
  queue: string;
  /** How many partitions it has now (1 to 64). */
  partitions: number;
  /** Whether the call made the queue or added partitions to it; false: it was already so. */
  changed: boolean;
}

/**
 * A queue's flow limits, enforced in Redis across every server and worker: jobs held back
 * by one stay queued and are leased as the limit allows. 0 is no limit of that kind.
 * `setQueueLimits` takes any of them (an omitted one is 0); `stats` reads back all of them.
 * The `group` ones apply to each group (`groupKey` at enqueue) separately.
 */
export interface QueueLimits {
  /** Most jobs leased per second, on average (a token bucket refilled at this rate); up to 1,000,000. */
  ratePerSecond: number;
  /** Most jobs leased at once after an idle time (the bucket's size); 0: the larger of 1 and `ratePerSecond`. Needs a rate. */
  burst: number;
  /** Most jobs of the queue active at once; up to 1,000,000. */
  maxActive: number;
  /** Most jobs of one group leased per second, on average, each group with a bucket of its own; up to 1,000,000. */
  groupRatePerSecond: number;
  /** The size of each group's bucket; 0: the larger of 1 and `groupRatePerSecond`. Needs a group rate. */
  groupBurst: number;
  /** Most jobs of one group active at once (1: one running job per customer); up to 1,000,000. */
  groupMaxActive: number;
}

/**
 * What an API token may do (docs/security.md lists each method's roles): "producer"
 * enqueues and reads the status of jobs in its queues, "worker" leases and settles them,
 * "admin" may call every method on its queues (token management needs the pattern `*`).
 */
export type TokenRole = "producer" | "worker" | "admin";

/** An API token as the server describes it: never its secret. */
export interface TokenInfo {
  /** The token's public id, the part before its secret (`jq_<id>_<secret>`): what `revokeToken` takes. */
  id: string;
  /** A label for people: who or what holds the token. */
  name: string;
  role: TokenRole;
  /** Shell-style patterns (`*`, `?`, `[...]`) of the queues the token may touch; `*` is every queue. */
  queues: string[];
  createTime: Date;
  /** When the token stops working; unset when it works until revoked. */
  expireTime?: Date;
}

/** Options of `createToken`. */
export interface CreateTokenOptions extends CallOptions {
  /** How long the token works, in ms (positive); unset: until revoked. */
  ttlMs?: number;
}

/** What `createToken` made: the bearer token, shown this once, and its description. */
export interface CreatedToken {
  /** `jq_<id>_<secret>`: send it as the `token` option. The server keeps only its hash. */
  token: string;
  info: TokenInfo;
}

/**
 * A webhook: an HTTP(S) endpoint the servers POST failure alerts to, as signed JSON
 * (docs/monitoring.md): event `job.dead` when a job of its queue ends dead, and, when its
 * thresholds are set, `queue.oldest_job_age` and `queue.dead_jobs`.
 */
export interface Webhook {
  /** Set by the server: what `deleteWebhook` takes. */
  id: string;
  /** Where the POSTs go: http:// or https://. */
  url: string;
  /** The queue whose events it receives; undefined: every queue. */
  queue?: string;
  /** Also alerts when a queue's oldest ready job has waited longer than this, in ms; undefined: never. */
  oldestJobAgeMs?: number;
  /** Also alerts when a queue holds at least this many dead jobs; 0: never. */
  deadJobs: number;
  /** Whether the endpoint may be on a private, loopback or link-local address. */
  allowPrivateNetwork: boolean;
  createTime: Date;
}

/** Options of `createWebhook`. */
export interface CreateWebhookOptions extends CallOptions {
  /** The queue whose events it receives (its name, not a pattern); unset: every queue. */
  queue?: string;
  /**
   * Also alert when a queue's oldest ready job has waited longer than this many ms (1 s to
   * 7 days): event `queue.oldest_job_age`, once when it passes, once when it is back under.
   * Unset: never.
   */
  oldestJobAgeMs?: number;
  /**
   * Also alert when a queue holds at least this many dead jobs: event `queue.dead_jobs`, once
   * when it passes, once when it is back under. Unset or 0: never.
   */
  deadJobs?: number;
  /**
   * Allow an endpoint on a private, loopback or link-local address (an internal service).
   * Default false: the URL's host must resolve to public addresses only.
   */
  allowPrivateNetwork?: boolean;
}

/** What `createWebhook` made: the signing secret, shown this once, and the webhook. */
export interface CreatedWebhook {
  /**
   * The key of every delivery's signature: `Jobqueue-Signature: sha256=<hex of
   * HMAC-SHA256(secret, "<Jobqueue-Timestamp>.<raw body>")>`. The server shows it only here.
   */
  secret: string;
  webhook: Webhook;
}

/** Where the library logs. The default writes warnings and errors to stderr. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
