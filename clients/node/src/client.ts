/** Client: the producer API (enqueue, inspect, list, watch, cancel, retry, create queues, pause, limit, wait), schedules, token and webhook management, with Promises. */

import type { Tracer, TracerProvider } from "@opentelemetry/api";
import {
  Metadata,
  status as GrpcStatus,
  type CallOptions as GrpcCallOptions,
  type ClientUnaryCall,
  type ServiceError,
} from "@grpc/grpc-js";

import { pollIntervals } from "./backoff.js";
import { StreamOrCalls } from "./batch-sender.js";
import { isJobRefusal, sameKind, type JobRefusal } from "./batch-wire.js";
import { Batcher, batchingSettings } from "./batcher.js";
import { resolveConnection, serviceClient, type ConnectionOptions } from "./channel.js";
import * as convert from "./convert.js";
import { EnqueueStream, type EnqueueDuplex } from "./enqueue-stream.js";
import {
  DeadlineExceededError,
  InternalError,
  InvalidArgumentError,
  JobQueueError,
  UnavailableError,
  fromServiceError,
} from "./errors.js";
import {
  JobQueueServiceService,
  type CreateQueueResponse,
  type CreateScheduleResponse,
  type CreateTokenResponse,
  type CreateWebhookResponse,
  type EnqueueBatchResponse,
  type EnqueueResponse,
  type GetScheduleResponse,
  type GetStatusResponse,
  type JobQueueServiceClient,
  type ListJobsRequest,
  type ListJobsResponse,
  type ListSchedulesRequest,
  type ListSchedulesResponse,
  type ListTokensResponse,
  type ListWebhooksResponse,
  type PauseQueueResponse,
  type PauseScheduleResponse,
  type ResumeQueueResponse,
  type ResumeScheduleResponse,
  type Schedule,
  type SetQueueLimitsRequest,
  type StatsResponse,
  type UpdateScheduleResponse,
  type WatchJobResponse,
} from "./gen/jobqueue/v1/job_queue_service.js";
import { scheduleInfo, scheduleMessage, type ListSchedulesOptions, type ScheduleInfo, type ScheduleSpec } from "./schedules.js";
import { sleep } from "./timing.js";
import { commonQueue, injectJob, traceSend, tracerOf, type Carrier } from "./tracing.js";
import {
  isTerminal,
  type BatchingOptions,
  type CallOptions,
  type CreateQueueResult,
  type CreatedToken,
  type CreatedWebhook,
  type CreateTokenOptions,
  type CreateWebhookOptions,
  type EnqueueBatchOptions,
  type EnqueueOptions,
  type EnqueueResult,
  type Job,
  type JobSpec,
  type JobState,
  type ListJobsOptions,
  type QueueLimits,
  type QueueStats,
  type TokenInfo,
  type TokenRole,
  type Webhook,
} from "./types.js";

/** Default deadline of each call. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Default time `waitFor` waits for a job to finish. */
export const DEFAULT_WAIT_MS = 60_000;
/** Jobs per EnqueueBatch call (the server's default limit). */
export const MAX_BATCH = 1000;
/** Jobs per ListJobs call unless `pageSize` says otherwise (the server's default). */
export const DEFAULT_PAGE_SIZE = 100;
const INT32_MAX = 2 ** 31 - 1;

export interface ClientOptions extends ConnectionOptions {
  /** Default deadline of each call in ms (default 10 s); each method also takes `timeoutMs`. */
  timeoutMs?: number;
  /**
   * How `enqueue` gathers concurrent calls into batches (on by default, with
   * `DEFAULT_BATCHING`), sent on one EnqueueStream per client (EnqueueBatch calls to a server
   * without it); `false` sends each job in an Enqueue call of its own.
   */
  batching?: BatchingOptions | false;
  /**
   * Where the `send <queue>` spans of enqueues go (default: the global one of
   * `@opentelemetry/api`, a no-op until an SDK registers one). See "Tracing" in the README.
   */
  tracerProvider?: TracerProvider;
}

export interface ConnectOptions extends ClientOptions {
  /** How long `Client.connect` waits for the channel to be ready (default 10 s). */
  waitMs?: number;
}

export interface WaitOptions {
  /** Give up after this many ms (default 60 s; `Infinity` waits for ever). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Options of `watchJob`. */
export interface WatchOptions {
  /** End the watch with DeadlineExceededError after this many ms (default: no limit). */
  timeoutMs?: number;
  /** Ends the watch; the loop throws the signal's reason. */
  signal?: AbortSignal;
}

type Callback<R> = (error: ServiceError | null, response: R) => void;
type Start<R> = (metadata: Metadata, options: Partial<GrpcCallOptions>, callback: Callback<R>) => ClientUnaryCall;

const ENQUEUE_BATCH = JobQueueServiceService.enqueueBatch;
const ENQUEUE_STREAM = JobQueueServiceService.enqueueStream;
/** The batcher frames its requests itself (each job encoded once): sent as they are. */
const asIs = (body: Buffer): Buffer => body;

/**
 * Producer client. Every method returns a Promise, takes optional `{timeoutMs, signal}`,
 * and rejects with a {@link JobQueueError} subclass when the server refuses or cannot be
 * reached. Calls are not retried: `enqueue` is only safe to repeat with an idempotencyKey.
 * Concurrent `enqueue` calls share batches, sent on one EnqueueStream (see `batching`).
 *
 * ```ts
 * const client = new Client("localhost:50051");
 * const { jobId } = await client.enqueue("emails", { to: "a@example.com" });
 * const job = await client.waitFor(jobId);
 * await client.close();
 * ```
 */
export class Client {
  /** The generated @grpc/grpc-js client, for what this API does not cover. */
  readonly raw: JobQueueServiceClient;
  readonly target: string;
  timeoutMs: number;
  private readonly batcher: Batcher | undefined;
  private readonly tracer: Tracer;

  constructor(target: string, options: ClientOptions = {}) {
    const batching = options.batching === false ? undefined : batchingSettings(options.batching);
    this.target = target;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.tracer = tracerOf(options.tracerProvider);
    this.raw = serviceClient(target, resolveConnection(options));
    if (batching !== undefined) {
      const newStream = () => new EnqueueStream(() => this.openEnqueueStream(), () => this.timeoutMs);
      this.batcher = new Batcher(new StreamOrCalls(newStream, (body, deadline) => this.sendBatch(body, deadline)), batching);
    }
  }

  /** A client whose channel is connected; rejects with UnavailableError after `waitMs`. */
  static async connect(target: string, options: ConnectOptions = {}): Promise<Client> {
    const client = new Client(target, options);
    const waitMs = options.waitMs ?? DEFAULT_TIMEOUT_MS;
    try {
      await new Promise<void>((resolve, reject) => {
        client.raw.waitForReady(Date.now() + waitMs, (error) => (error ? reject(error) : resolve()));
      });
    } catch (error) {
      await client.close();
      throw new UnavailableError(`could not connect to ${target} within ${waitMs} ms`, { cause: error });
    }
    return client;
  }

  /**
   * Sends the jobs `enqueue` is gathering and waits until every batch in flight is answered
   * (each at most until its deadline). Calls made meanwhile join later batches.
   */
  async flush(): Promise<void> {
    await this.batcher?.flush();
  }

  /**
   * Flushes, ends the EnqueueStream (waiting at most `timeoutMs` for the server to end it),
   * then closes the channel. `enqueue` calls made after it began are refused; other calls
   * still under way fail with CANCELLED.
   */
  async close(): Promise<void> {
    await this.batcher?.close();
    this.raw.close();
  }

  /**
   * Adds one job: a JSON object or bytes as its payload. With `durability: "fsynced"` it
   * resolves only once the job is on Redis's disk. With batching on, the job may travel with
   * other callers' in one EnqueueStream message (or EnqueueBatch call): errors are still this
   * job's own (a batch refused as a whole fails every job in it), and a `signal` aborted
   * before the job was sent takes it out of the batch. `dependsOn` makes the job wait
   * ("waiting") until those jobs completed; batch refs (`ref`, `dependsOnRefs`) are
   * `enqueueBatch`'s only, and refused here (InvalidArgumentError) before sending.
   */
  async enqueue(
    queue: string,
    payload?: Record<string, unknown> | Uint8Array,
    options: EnqueueOptions & CallOptions = {},
  ): Promise<EnqueueResult> {
    const spec: JobSpec = { ...options, queue };
    if (payload !== undefined) spec.payload = payload;
    const request = convert.enqueueRequest(spec);
    // Refs name jobs of the same request: gathered with other callers' jobs, they would meet
    // refs that are none of this caller's business (the server refuses them on Enqueue too).
    if (convert.usesRefs(request)) {
      const field = request.ref !== "" ? "ref" : "depends_on_refs";
      throw new InvalidArgumentError(`${field}: refs only name jobs of one enqueueBatch call; give enqueue the ids in dependsOn`, { field });
    }
    return traceSend(this.tracer, queue, {}, async (span, carrier) => {
      injectJob(request.metadata, carrier);
      let result: EnqueueResult;
      if (this.batcher !== undefined) {
        // The batch's call or stream carries other callers' jobs too: the context goes in the job only.
        result = await this.batcher.add(request, Date.now() + (options.timeoutMs ?? this.timeoutMs), options.signal);
      } else {
        const response = await this.unary<EnqueueResponse>(
          (metadata, callOptions, callback) => this.raw.enqueue(request, metadata, callOptions, callback),
          options,
          carrier,
        );
        result = { jobId: response.jobId, duplicate: response.duplicate };
      }
      span.setAttribute("messaging.message.id", result.jobId);
      return result;
    });
  }

  /**
   * Adds many jobs with EnqueueBatch, {@link MAX_BATCH} per call; results come in the order
   * given. Each call is all-or-nothing; when a later call fails, the jobs of earlier ones stay.
   * An InvalidArgumentError names the field by its index in `jobs` (`requests[1234].queue`).
   * Each call is answered at `options.durability` or at the strictest level of its jobs.
   *
   * A job may depend on jobs of the same call by their `ref`s (`dependsOnRefs`), which need
   * no ids yet; such a graph must go in one call, so a batch that uses refs and holds more
   * than {@link MAX_BATCH} jobs is refused (InvalidArgumentError) before anything is sent.
   *
   * ```ts
   * const [a, b, c] = await client.enqueueBatch([
   *   { queue: "fetch", payload: { url: urlA }, ref: "a" },
   *   { queue: "fetch", payload: { url: urlB }, ref: "b" },
   *   { queue: "merge", dependsOnRefs: ["a", "b"] }, // "waiting" until a and b completed
   * ]);
   * ```
   */
  async enqueueBatch(jobs: readonly JobSpec[], options: EnqueueBatchOptions = {}): Promise<EnqueueResult[]> {
    const durability = convert.toDurability(options.durability, "durability");
    const requests = jobs.map((spec, index) => convert.enqueueRequest(spec, `requests[${index}].`));
    if (requests.length > MAX_BATCH && requests.some(convert.usesRefs)) {
      // Split into calls, the refs of one call could not name the jobs of another.
      throw new InvalidArgumentError(
        `requests: a batch that uses refs (ref, dependsOnRefs) must fit in one EnqueueBatch call of at most ${MAX_BATCH} jobs, ` +
          `since refs only name jobs of the same call; this one has ${requests.length}: nothing was sent`,
        { field: "requests" },
      );
    }
    const results: EnqueueResult[] = [];
    for (let offset = 0; offset < requests.length; offset += MAX_BATCH) {
      const batch = requests.slice(offset, offset + MAX_BATCH);
      try {
        // One span per EnqueueBatch call, as in the other client libraries.
        const attributes = { "messaging.batch.message_count": batch.length };
        const response = await traceSend(this.tracer, commonQueue(batch), attributes, (_span, carrier) => {
          for (const request of batch) injectJob(request.metadata, carrier);
          return this.unary<EnqueueBatchResponse>(
            (metadata, callOptions, callback) => this.raw.enqueueBatch({ requests: batch, durability, queue: "" }, metadata, callOptions, callback),
            options,
            carrier,
          );
        });
        results.push(...response.responses.map((r) => ({ jobId: r.jobId, duplicate: r.duplicate })));
      } catch (error) {
        throw offset > 0 && isJobRefusal(error) ? shiftField(error, offset) : error;
      }
    }
    return results;
  }

  /** The job as stored now; NotFoundError when it does not exist. */
  async getStatus(jobId: string, options: CallOptions = {}): Promise<Job> {
    const response = await this.unary<GetStatusResponse>(
      (metadata, callOptions, callback) => this.raw.getStatus({ jobId }, metadata, callOptions, callback),
      options,
    );
    if (response.job === undefined) throw new InternalError(`the server sent no job for ${jobId}`);
    return convert.job(response.job);
  }

  /** Counts by state for one queue, or for every known queue (sorted by name, read a page at a time). */
  async stats(queue?: string, options: CallOptions = {}): Promise<QueueStats[]> {
    const found: QueueStats[] = [];
    let pageToken = "";
    do {
      const request = { queue: queue ?? "", pageSize: 0, pageToken };
      const response = await this.unary<StatsResponse>(
        (metadata, callOptions, callback) => this.raw.stats(request, metadata, callOptions, callback),
        options,
      );
      found.push(...response.queues.map(convert.queueStats));
      pageToken = response.nextPageToken;
    } while (pageToken !== "");
    return found;
  }

  /**
   * Every job of `queue` in `state`, fetched `pageSize` at a time as the loop asks for them:
   * queued ones in lease order, scheduled by due time, active by lease deadline, finished
   * ones newest first. Pages are by position, so jobs that change state meanwhile may be
   * skipped or seen twice. `createdAfter`, `createdBefore` and `metadata` keep only the
   * matching jobs, filtered by the server: each call then examines at most 5,000 jobs, so a
   * sparse match may take several calls per job yielded (an empty page leads to the next).
   *
   * ```ts
   * for await (const job of client.listJobs("emails", "dead")) await client.retry(job.id);
   * for await (const job of client.listJobs("emails", "dead", { metadata: { customer: "acme" } })) console.log(job.id);
   * ```
   */
  async *listJobs(queue: string, state: JobState, options: ListJobsOptions = {}): AsyncGenerator<Job, void, undefined> {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || Math.abs(pageSize) > INT32_MAX) {
      throw new InvalidArgumentError("page_size: must be an integer", { field: "page_size" }); // the range is the server's
    }
    // The filters' bounds (times from 1970 to 9999, createdBefore later than createdAfter, at
    // most 16 pairs, the keys' and values' lengths) are the server's, which names the field
    // the same way.
    const base: Omit<ListJobsRequest, "pageToken"> = {
      queue,
      state: convert.toJobState(state),
      pageSize,
      createdAfter: options.createdAfter === undefined ? undefined : convert.checkDate(options.createdAfter, "created_after"),
      createdBefore: options.createdBefore === undefined ? undefined : convert.checkDate(options.createdBefore, "created_before"),
      metadata: { ...options.metadata },
    };
    let pageToken = "";
    for (;;) {
      const request: ListJobsRequest = { ...base, pageToken };
      const page = await this.unary<ListJobsResponse>(
        (metadata, callOptions, callback) => this.raw.listJobs(request, metadata, callOptions, callback),
        options,
      );
      for (const job of page.jobs) yield convert.job(job);
      // A filtered page may be empty and still have a token: the server stopped after
      // examining its share of jobs. Follow it, whatever the page held.
      if (page.nextPageToken === "") return;
      if (page.nextPageToken === pageToken) {
        // The token just sent, handed back: following it would page for ever. An empty page
        // made no progress, so there is nothing more to find; jobs with it would be repeated.
        if (page.jobs.length === 0) return;
        throw new InternalError("the server sent the same page token twice");
      }
      pageToken = page.nextPageToken;
    }
  }

  /**
   * Ends a scheduled, queued or active job as cancelled. The worker running an active one is
   * told to stop it (its handler's `ctx.signal` aborts with a JobStoppedError, reason
   * "cancelled") and its ack or fail is refused. WrongStateError once the job finished.
   */
  async cancel(jobId: string, options: CallOptions = {}): Promise<void> {
    await this.unary((metadata, callOptions, callback) => this.raw.cancel({ jobId }, metadata, callOptions, callback), options);
  }

  /** Sends a dead or cancelled job back to its queue with its attempts reset. */
  async retry(jobId: string, options: CallOptions = {}): Promise<void> {
    await this.unary((metadata, callOptions, callback) => this.raw.retry({ jobId }, metadata, callOptions, callback), options);
  }

  /**
   * Declares `queue` with `partitions` partitions (1 to 64; 0 means 1), admin role like
   * `pauseQueue`. Queues need no declaring: the first enqueue makes one with a single
   * partition. A partitioned queue is still one queue to producers, workers and every other
   * method; its partitions are stored apart (on a cluster, each on the node of its own hash
   * slot), so one hot queue spans many nodes (docs/scaling.md). Jobs with the same
   * `partitionKey` go to the same partition and are leased in the order they were enqueued.
   * Declaring an existing queue again with more partitions adds them (`changed` true); with
   * as many it changes nothing (`changed` false); with fewer it is refused with an
   * InvalidArgumentError naming `partitions`, as is a count out of range (one that is not an
   * integer is refused before sending). `stats` shows a queue's `partitions`.
   *
   * ```ts
   * const { partitions, changed } = await admin.createQueue("orders", 8);
   * await client.enqueue("orders", { id: 42 }, { partitionKey: "customer-7" }); // in order with customer-7's other jobs
   * ```
   */
  async createQueue(queue: string, partitions: number, options: CallOptions = {}): Promise<CreateQueueResult> {
    const request = convert.createQueueRequest(queue, partitions);
    const response = await this.unary<CreateQueueResponse>(
      (metadata, callOptions, callback) => this.raw.createQueue(request, metadata, callOptions, callback),
      options,
    );
    return { queue: response.queue, partitions: response.partitions, changed: response.changed };
  }

  /**
   * Stops delivery from `queue` on every server until `resumeQueue`: none of its jobs is
   * leased, enqueues still work, and jobs already leased finish. Resolves to false when the
   * queue was paused already. Needs the admin role when the server runs with `--auth`.
   */
  async pauseQueue(queue: string, options: CallOptions = {}): Promise<boolean> {
    const response = await this.unary<PauseQueueResponse>(
      (metadata, callOptions, callback) => this.raw.pauseQueue({ queue }, metadata, callOptions, callback),
      options,
    );
    return response.changed;
  }

  /**
   * Lets the jobs of a paused `queue` be leased again and wakes the workers waiting for it.
   * Resolves to false when the queue was not paused. Admin role, like `pauseQueue`.
   */
  async resumeQueue(queue: string, options: CallOptions = {}): Promise<boolean> {
    const response = await this.unary<ResumeQueueResponse>(
      (metadata, callOptions, callback) => this.raw.resumeQueue({ queue }, metadata, callOptions, callback),
      options,
    );
    return response.changed;
  }

  /**
   * Sets how fast and how much of `queue` runs, on every server sharing the store (admin
   * role, like `pauseQueue`): at most `ratePerSecond` jobs leased per second on average
   * (`burst` at once after an idle time; it needs a rate), and at most `maxActive` of its jobs
   * active at once. `groupRatePerSecond`, `groupBurst` and `groupMaxActive` are the same for
   * each group of the queue (`groupKey` at enqueue) separately: `groupMaxActive: 1` runs one
   * job per group at a time. An omitted limit is 0, no limit of that kind, so
   * `setQueueLimits(queue, {})` removes them all. Jobs held back stay queued; jobs already
   * leased are not affected. `stats` shows the limits. An InvalidArgumentError names the
   * field (`limits.max_active`, `limits.group_burst`).
   *
   * ```ts
   * await admin.setQueueLimits("emails", { ratePerSecond: 50, burst: 100, maxActive: 10 });
   * await admin.setQueueLimits("reports", { groupMaxActive: 1 }); // one running report per customer
   * ```
   */
  async setQueueLimits(queue: string, limits: Partial<QueueLimits>, options: CallOptions = {}): Promise<void> {
    const request: SetQueueLimitsRequest = { queue, limits: convert.queueLimitsMessage(limits) };
    await this.unary((metadata, callOptions, callback) => this.raw.setQueueLimits(request, metadata, callOptions, callback), options);
  }

  // -- schedules: these need an admin token whose patterns include `*` when the server runs
  // with `--auth` (docs/security.md) ---------------------------------------------------------

  /**
   * Adds a recurring job: a named schedule that makes one job from its template at each tick
   * of `spec.cron` or every `spec.everyMs`, on whichever server notices the tick first, and
   * exactly one per tick however many servers run (docs/schedules.md). Resolves to the
   * schedule as stored, with its first tick (`nextRunTime`). ScheduleExistsError when the
   * name is taken, ScheduleLimitReachedError when the server holds as many schedules as it
   * allows; an InvalidArgumentError names the field (`schedule.cron`,
   * `schedule.template.queue`), and what the wire could not carry is refused before sending.
   *
   * ```ts
   * await admin.createSchedule({ name: "nightly-report", cron: "0 3 * * *", timeZone: "Europe/Paris", queue: "reports" });
   * ```
   */
  async createSchedule(spec: ScheduleSpec, options: CallOptions = {}): Promise<ScheduleInfo> {
    const schedule = scheduleMessage(spec);
    const response = await this.unary<CreateScheduleResponse>(
      (metadata, callOptions, callback) => this.raw.createSchedule({ schedule }, metadata, callOptions, callback),
      options,
    );
    return storedSchedule(response.schedule, spec.name);
  }

  /** The schedule named `name`, with its next and last run; ScheduleNotFoundError when there is none. */
  async getSchedule(name: string, options: CallOptions = {}): Promise<ScheduleInfo> {
    const response = await this.unary<GetScheduleResponse>(
      (metadata, callOptions, callback) => this.raw.getSchedule({ name }, metadata, callOptions, callback),
      options,
    );
    return storedSchedule(response.schedule, name);
  }

  /** Every schedule, sorted by name, read `pageSize` at a time (default: the server's, 100). */
  async listSchedules(options: ListSchedulesOptions = {}): Promise<ScheduleInfo[]> {
    const pageSize = options.pageSize ?? 0;
    if (!Number.isInteger(pageSize) || Math.abs(pageSize) > INT32_MAX) {
      throw new InvalidArgumentError("page_size: must be an integer", { field: "page_size" }); // the range is the server's
    }
    const found: ScheduleInfo[] = [];
    let pageToken = "";
    for (;;) {
      const request: ListSchedulesRequest = { pageSize, pageToken };
      const page = await this.unary<ListSchedulesResponse>(
        (metadata, callOptions, callback) => this.raw.listSchedules(request, metadata, callOptions, callback),
        options,
      );
      found.push(...page.schedules.map(scheduleInfo));
      if (page.nextPageToken === "") return found;
      // A token handed back unchanged would page for ever.
      if (page.nextPageToken === pageToken) throw new InternalError("the server sent the same page token twice");
      pageToken = page.nextPageToken;
    }
  }

  /**
   * Replaces the definition of the schedule `spec.name` with `spec` (every field: what it
   * leaves unset takes its default), keeping its paused state and its last run; its ticks are
   * counted anew from the later of now and the last run. A ScheduleInfo is a spec too, so
   * `updateSchedule({ ...info, metadata: { owner: "ops" } })` changes one thing (to switch
   * timings, clear the other: `{ ...info, cron: undefined, everyMs: 60_000 }`).
   * ScheduleNotFoundError when there is no such schedule.
   */
  async updateSchedule(spec: ScheduleSpec, options: CallOptions = {}): Promise<ScheduleInfo> {
    const schedule = scheduleMessage(spec);
    const response = await this.unary<UpdateScheduleResponse>(
      (metadata, callOptions, callback) => this.raw.updateSchedule({ schedule }, metadata, callOptions, callback),
      options,
    );
    return storedSchedule(response.schedule, spec.name);
  }

  /** Removes a schedule; the jobs it made stay. ScheduleNotFoundError when there was none. */
  async deleteSchedule(name: string, options: CallOptions = {}): Promise<void> {
    await this.unary((metadata, callOptions, callback) => this.raw.deleteSchedule({ name }, metadata, callOptions, callback), options);
  }

  /**
   * Stops a schedule's ticks until `resumeSchedule`: it makes no job, and `getSchedule`
   * shows `paused: true` and no `nextRunTime`. Resolves to false when it was paused already.
   */
  async pauseSchedule(name: string, options: CallOptions = {}): Promise<boolean> {
    const response = await this.unary<PauseScheduleResponse>(
      (metadata, callOptions, callback) => this.raw.pauseSchedule({ name }, metadata, callOptions, callback),
      options,
    );
    return response.changed;
  }

  /**
   * Starts a paused schedule again from its next tick after now: the ticks that passed while
   * it was paused are not made up. Resolves to false when it was not paused.
   */
  async resumeSchedule(name: string, options: CallOptions = {}): Promise<boolean> {
    const response = await this.unary<ResumeScheduleResponse>(
      (metadata, callOptions, callback) => this.raw.resumeSchedule({ name }, metadata, callOptions, callback),
      options,
    );
    return response.changed;
  }

  // -- tokens: these need an admin token whose patterns include `*` (docs/security.md) ----

  /**
   * Issues an API token for `queues` (1 to 64 shell-style patterns, `*` for every queue).
   * The bearer token is in the result only: the server keeps its hash, so store it before
   * anything else. `name` is a label for people (1 to 128 printable characters); `ttlMs`
   * makes the token expire, otherwise it works until revoked. An unknown role is an
   * InvalidArgumentError (field `role`), refused before sending; TokenLimitReachedError
   * when the server holds as many tokens as it allows.
   *
   * ```ts
   * const { token, info } = await admin.createToken("billing-api", "producer", ["billing.*"]);
   * ```
   */
  async createToken(name: string, role: TokenRole, queues: readonly string[], options: CreateTokenOptions = {}): Promise<CreatedToken> {
    const request = convert.createTokenRequest(name, role, queues, options.ttlMs);
    const response = await this.unary<CreateTokenResponse>(
      (metadata, callOptions, callback) => this.raw.createToken(request, metadata, callOptions, callback),
      options,
    );
    if (response.info === undefined) throw new InternalError("the server sent no info for the token it created");
    return { token: response.token, info: convert.tokenInfo(response.info) };
  }

  /** Every token, sorted by id, without secrets. */
  async listTokens(options: CallOptions = {}): Promise<TokenInfo[]> {
    const response = await this.unary<ListTokensResponse>(
      (metadata, callOptions, callback) => this.raw.listTokens({}, metadata, callOptions, callback),
      options,
    );
    return response.tokens.map(convert.tokenInfo);
  }

  /**
   * Deletes a token by its id (`TokenInfo.id`): new calls with it are refused with
   * TokenInvalidError, and its open streams end within seconds. TokenNotFoundError when no
   * token has that id (never issued, or revoked already).
   */
  async revokeToken(id: string, options: CallOptions = {}): Promise<void> {
    await this.unary(
      (metadata, callOptions, callback) => this.raw.revokeToken({ tokenId: id }, metadata, callOptions, callback),
      options,
    );
  }

  // -- webhooks: these need an admin token whose patterns include `*` (docs/security.md) --

  /**
   * Has the servers POST signed JSON to `url` when a job of `options.queue` (unset: any
   * queue) ends dead (event `job.dead`), and, when set, when a queue's oldest ready job has
   * waited longer than `oldestJobAgeMs` (`queue.oldest_job_age`) or it holds `deadJobs` dead
   * jobs (`queue.dead_jobs`). The result's `secret` signs every delivery (`Jobqueue-Signature:
   * sha256=<hex of HMAC-SHA256(secret, "<Jobqueue-Timestamp>.<raw body>")>`): the server shows
   * it only here. The URL's host must resolve to public addresses unless
   * `allowPrivateNetwork`; otherwise, as for a malformed URL, an InvalidArgumentError names
   * `webhook.url`. WebhookLimitReachedError when the server holds as many webhooks as it
   * allows (100).
   *
   * ```ts
   * const { secret, webhook } = await admin.createWebhook("https://alerts.example.com/jobq", { queue: "emails", deadJobs: 100 });
   * ```
   */
  async createWebhook(url: string, options: CreateWebhookOptions = {}): Promise<CreatedWebhook> {
    const request = convert.createWebhookRequest(url, options);
    const response = await this.unary<CreateWebhookResponse>(
      (metadata, callOptions, callback) => this.raw.createWebhook(request, metadata, callOptions, callback),
      options,
    );
    if (response.webhook === undefined) throw new InternalError("the server sent no webhook for the webhook it created");
    return { secret: response.secret, webhook: convert.webhookInfo(response.webhook) };
  }

  /** Every webhook, oldest first, without secrets. */
  async listWebhooks(options: CallOptions = {}): Promise<Webhook[]> {
    const response = await this.unary<ListWebhooksResponse>(
      (metadata, callOptions, callback) => this.raw.listWebhooks({}, metadata, callOptions, callback),
      options,
    );
    return response.webhooks.map(convert.webhookInfo);
  }

  /**
   * Removes a webhook by its id (`Webhook.id`): no delivery to it starts after this resolves.
   * WebhookNotFoundError when no webhook has that id (never created, or deleted already).
   */
  async deleteWebhook(id: string, options: CallOptions = {}): Promise<void> {
    await this.unary((metadata, callOptions, callback) => this.raw.deleteWebhook({ id }, metadata, callOptions, callback), options);
  }

  /**
   * The job as it is now, then again at each change of its state or progress, until it is
   * completed, dead or cancelled: the loop ends after that job (the server ends the stream).
   * NotFoundError when the job does not exist. A server older than WatchJob refuses it with a
   * JobQueueError whose code is UNIMPLEMENTED (`waitFor` polls instead). No deadline unless
   * `timeoutMs` is given; breaking out of the loop or aborting `signal` ends the call.
   *
   * ```ts
   * for await (const job of client.watchJob(jobId)) console.log(job.state, job.progress?.percent);
   * ```
   */
  async *watchJob(jobId: string, options: WatchOptions = {}): AsyncGenerator<Job, void, undefined> {
    const { signal } = options;
    signal?.throwIfAborted();
    const callOptions: Partial<GrpcCallOptions> = {};
    if (options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs)) callOptions.deadline = Date.now() + options.timeoutMs;
    const call = this.raw.watchJob({ jobId }, new Metadata(), callOptions);
    const onAbort = (): void => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const response of call as AsyncIterable<WatchJobResponse>) {
        if (response.job === undefined) throw new InternalError(`the server sent no job for ${jobId}`);
        yield convert.job(response.job);
      }
    } catch (error) {
      throw signal?.aborted ? signal.reason : fromServiceError(error);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      call.on("error", () => undefined); // the CANCELLED of our own cancel, when the loop ended early
      call.cancel();
    }
  }

  /**
   * Resolves with the job once it is completed, dead or cancelled, as the last message of
   * `watchJob` brings it. A briefly unreachable server does not end the wait (the watch
   * starts again); a server without WatchJob is polled with GetStatus instead, every 10 ms
   * at first and slowing to every 500 ms. Rejects with DeadlineExceededError (reason
   * `WAIT_TIMEOUT`) after `timeoutMs`, or with the signal's reason when it aborts.
   */
  async waitFor(jobId: string, options: WaitOptions = {}): Promise<Job> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    const deadline = Date.now() + timeoutMs;
    const { signal } = options;
    const retries = pollIntervals();
    for (;;) {
      signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) throw waitTimeout(jobId, timeoutMs);
      try {
        const job = await this.watchUntilFinished(jobId, left, signal);
        if (job !== undefined) return job;
      } catch (error) {
        if (error instanceof JobQueueError && error.code === GrpcStatus.UNIMPLEMENTED) {
          return this.pollUntilFinished(jobId, timeoutMs, deadline, signal);
        }
        // DeadlineExceededError too: the watch's deadline is the wait's.
        if (!(error instanceof UnavailableError)) throw error;
      }
      const wait = Math.min(retries.next().value as number, deadline - Date.now());
      if (wait > 0) await sleep(wait, signal);
    }
  }

  /** The finished job `watchJob` ends with; undefined when the stream ended before it. */
  private async watchUntilFinished(jobId: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Job | undefined> {
    for await (const job of this.watchJob(jobId, signal ? { timeoutMs, signal } : { timeoutMs })) {
      if (isTerminal(job.state)) return job;
    }
    return undefined;
  }

  /** `waitFor` on a server without WatchJob: GetStatus until the job is finished. */
  private async pollUntilFinished(jobId: string, timeoutMs: number, deadline: number, signal: AbortSignal | undefined): Promise<Job> {
    for (const interval of pollIntervals()) {
      signal?.throwIfAborted();
      const callTimeout = Math.max(10, Math.min(this.timeoutMs, deadline - Date.now()));
      try {
        const job = await this.getStatus(jobId, signal ? { timeoutMs: callTimeout, signal } : { timeoutMs: callTimeout });
        if (isTerminal(job.state)) return job;
      } catch (error) {
        if (!(error instanceof UnavailableError)) throw error;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw waitTimeout(jobId, timeoutMs);
      await sleep(Math.min(interval, left), signal);
    }
    throw new Error("unreachable: pollIntervals never ends");
  }

  /** The batcher's stream: no deadline (it stays open while batches come; each batch has its own). */
  private openEnqueueStream(): EnqueueDuplex {
    const { path, responseDeserialize } = ENQUEUE_STREAM;
    return this.raw.makeBidiStreamRequest(path, asIs, responseDeserialize, new Metadata(), {});
  }

  private sendBatch(body: Buffer, deadline: number): Promise<EnqueueBatchResponse> {
    const { path, responseDeserialize } = ENQUEUE_BATCH;
    return this.call<EnqueueBatchResponse>(
      (metadata, callOptions, callback) =>
        this.raw.makeUnaryRequest(path, asIs, responseDeserialize, body, metadata, callOptions, (error, response) =>
          callback(error, response as EnqueueBatchResponse),
        ),
      deadline,
    );
  }

  /** `headers`: request metadata to send (a send span's context). */
  private unary<R>(start: Start<R>, options: CallOptions, headers?: Carrier): Promise<R> {
    return this.call(start, Date.now() + (options.timeoutMs ?? this.timeoutMs), options.signal, headers);
  }

  private call<R>(start: Start<R>, deadline: number, signal?: AbortSignal, headers: Carrier = {}): Promise<R> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
    return new Promise<R>((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = start(metadata, { deadline }, (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (error === null) resolve(response);
        else reject(signal?.aborted ? signal.reason : fromServiceError(error));
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** `waitFor`'s timeout. */
function waitTimeout(jobId: string, timeoutMs: number): DeadlineExceededError {
  return new DeadlineExceededError(`job ${jobId} did not finish within ${timeoutMs} ms`, { reason: "WAIT_TIMEOUT" });
}

/** The schedule a response carries; InternalError when it carries none. */
function storedSchedule(schedule: Schedule | undefined, name: string): ScheduleInfo {
  if (schedule === undefined) throw new InternalError(`the server sent no schedule for ${name}`);
  return scheduleInfo(schedule);
}

/** The same error with `requests[i]` in its field (and message) moved by `offset`. */
function shiftField(error: JobRefusal, offset: number): JobRefusal {
  const shift = (text: string): string =>
    text.replace(/^requests\[(\d+)\]/, (_, index: string) => `requests[${Number(index) + offset}]`);
  const options = { code: error.code, reason: error.reason, cause: error.cause };
  return sameKind(error, shift(error.message), error.field === undefined ? options : { ...options, field: shift(error.field) });
}
