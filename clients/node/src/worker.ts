/**
 * Worker: leases jobs over one stream, runs their handlers, settles them, and reconnects.
 *
 * ```ts
 * const worker = new Worker("localhost:50051", { concurrency: 8 });
 * worker.handle("emails", async (payload, ctx) => {
 *   await send(payload, { signal: ctx.signal });
 *   return { sent: true };
 * });
 * const stop = new AbortController();
 * process.once("SIGTERM", () => stop.abort());
 * await worker.run({ signal: stop.signal });
 * ```
 */

import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";

import type { Tracer, TracerProvider } from "@opentelemetry/api";

import { ReconnectBackoff, type ReconnectBackoffOptions } from "./backoff.js";
import { resolveConnection, serviceClient, type Connection, type ConnectionOptions } from "./channel.js";
import { Client } from "./client.js";
import { checkQueueName, toDuration, toDurability } from "./convert.js";
import {
  InvalidArgumentError,
  JobQueueError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.js";
import { JobRunner, summary, type Handler } from "./execution.js";
import type { Durability as ProtoDurability } from "./gen/jobqueue/v1/job.js";
import type { JobQueueServiceClient, Subscribe } from "./gen/jobqueue/v1/job_queue_service.js";
import { consoleLogger } from "./logger.js";
import { LeaseSession, newCounters, type WorkerCounters } from "./session.js";
import { pause, whenAborted } from "./timing.js";
import { tracerOf } from "./tracing.js";
import type { Durability, JsonObject, Logger } from "./types.js";

export const DEFAULT_CONCURRENCY = 10;
export const DEFAULT_GRACE_PERIOD_MS = 30_000;
/** How long one connection attempt waits for the channel before it counts as failed. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The connection options (TLS, token, channel) apply when the worker is given a target, not a Client. */
export interface WorkerOptions extends ConnectionOptions {
  /** Queues to take jobs from, in order of preference (default: those with handlers). */
  queues?: string[];
  /** Handlers run at once, and so the stream's credit window (default 10). */
  concurrency?: number;
  /** On stop, how long running handlers may take to finish (default 30 s). */
  gracePeriodMs?: number;
  /** Shown on the jobs this worker holds (default `host:pid:random`). */
  workerId?: string;
  /** Lease length asked for jobs that do not set their own (default: the server's, 30 s). */
  leaseDurationMs?: number;
  /**
   * The level of every ack (default: the server's). "fsynced": an ack is confirmed only once
   * the job's completion is on Redis's disk; when the store cannot do that, the attempt is
   * failed (and retried) with the reason instead. "replicated": likewise, once it reached
   * the primary's replicas.
   */
  ackDurability?: Durability;
  /** The reconnect policy (default: 100 ms base, 10 s cap, reset after 30 s healthy). */
  reconnect?: ReconnectBackoffOptions;
  /** Where to log (default: warnings and errors to stderr). */
  logger?: Logger;
  /**
   * Where the `process <queue>` spans of handlers go (default: the global one of
   * `@opentelemetry/api`, a no-op until an SDK registers one). See "Tracing" in the README.
   */
  tracerProvider?: TracerProvider;
}

export interface RunOptions {
  /** Aborting it stops the worker gracefully (see {@link Worker.run}). */
  signal?: AbortSignal;
}

/** Events a Worker emits. */
export interface WorkerEvents {
  /** A Lease stream is open and its Subscribe went out. */
  subscribed: [{ queues: string[]; maxInFlight: number; connection: number }];
  /** A Lease stream broke; the worker reconnects after `delayMs`. */
  disconnected: [{ error: JobQueueError; delayMs: number }];
}

/** host:pid:random, unique per process, shown on the jobs the worker holds. */
export function defaultWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}

/**
 * Runs handlers for the jobs of some queues, at most `concurrency` at a time.
 *
 * A handler gets `(payload, ctx)`; returning an object (or nothing) acks the job with that
 * result; throwing fails the attempt (retried after the job's backoff), NonRetryableError
 * makes the job dead at once, RetryAfterError sets the retry delay. Leases are extended
 * while handlers run. When the stream breaks the worker reconnects with exponential
 * backoff and full jitter; handlers still running on the lost stream get their signal
 * aborted and their results are dropped (the server already gave their jobs back).
 * A job the server stops (Client.cancel, or its `executionTimeoutMs` ran out) has its
 * handler's signal aborted with a JobStoppedError, and nothing is settled for it; its slot
 * takes a new job once the handler returns. `ctx.progress` and `ctx.log` report how far a
 * job is (see JobContext). A Worker runs once.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly gracePeriodMs: number;
  readonly workerId: string;
  readonly leaseDurationMs: number | undefined;
  readonly ackDurability: Durability | undefined;
  readonly counters: WorkerCounters = newCounters();
  private readonly target: Client | string;
  /** The channel settings, when the worker makes its own channel (a target, not a Client). */
  private readonly connection: Connection | undefined;
  private readonly logger: Logger;
  private readonly backoff: ReconnectBackoff;
  private readonly ackLevel: ProtoDurability;
  private readonly tracer: Tracer;
  private readonly handlers = new Map<string, Handler>();
  private readonly abandoned = new Set<Promise<void>>();
  private session: LeaseSession | undefined;
  private started = false;

  constructor(target: Client | string, options: WorkerOptions = {}) {
    super();
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InvalidArgumentError("concurrency must be a positive integer", { field: "concurrency" });
    }
    options.queues?.forEach((queue, index) => checkQueueName(queue, `queues[${index}]`));
    this.target = target;
    this.connection = typeof target === "string" ? resolveConnection(options) : undefined;
    this.queues = options.queues ?? [];
    this.concurrency = concurrency;
    this.gracePeriodMs = options.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
    this.workerId = options.workerId ?? defaultWorkerId();
    this.leaseDurationMs = options.leaseDurationMs;
    this.ackDurability = options.ackDurability;
    this.ackLevel = toDurability(options.ackDurability, "ackDurability");
    this.logger = options.logger ?? consoleLogger();
    this.backoff = new ReconnectBackoff(options.reconnect);
    this.tracer = tracerOf(options.tracerProvider);
  }

  /** Registers the handler for `queue`'s jobs (one per queue). Returns the worker. */
  handle<P = JsonObject>(queue: string, handler: Handler<P>): this {
    checkQueueName(queue);
    if (this.handlers.has(queue)) throw new Error(`a handler for queue ${JSON.stringify(queue)} is already registered`);
    this.handlers.set(queue, handler as unknown as Handler);
    return this;
  }

  /** The queues subscribed to: those given, else those with handlers. */
  get subscribedQueues(): string[] {
    return this.queues.length > 0 ? [...this.queues] : [...this.handlers.keys()];
  }

  /** Handlers running now on the current stream. */
  get running(): number {
    return this.session?.size ?? 0;
  }

  /**
   * Leases and runs jobs until `signal` aborts, then stops gracefully: takes no new jobs,
   * lets running handlers finish for up to `gracePeriodMs` (then aborts their `ctx.signal`
   * and drops their results), sends the last acks, closes the stream, and resolves.
   * Rejects only when the server refuses the subscription itself (InvalidArgumentError) or
   * the worker's credentials (UnauthenticatedError, PermissionDeniedError: a missing,
   * invalid, expired or revoked token, a role or queue the token does not allow), which
   * reconnecting would only repeat; any other failure of the stream is retried with backoff.
   */
  async run(options: RunOptions = {}): Promise<void> {
    if (this.started) throw new Error("a Worker runs once; create a new one");
    const queues = this.subscribedQueues;
    if (queues.length === 0) throw new Error("register a handler (worker.handle) before running the worker");
    const missing = queues.filter((queue) => !this.handlers.has(queue));
    if (missing.length > 0) throw new Error(`no handler for queue(s) ${missing.join(", ")}`);
    this.started = true;
    const signal = options.signal ?? new AbortController().signal;
    const owned = typeof this.target === "string";
    const stub = typeof this.target === "string" ? serviceClient(this.target, this.connection) : this.target.raw;
    const runner = new JobRunner(this.handlers, this.logger, this.ackLevel, this.tracer);
    this.logger.info(`worker ${this.workerId} serving ${queues.join(", ")} with concurrency ${this.concurrency}`);
    try {
      await this.serve(stub, runner, queues, signal);
    } finally {
      if (owned) stub.close();
      this.logger.info(`worker ${this.workerId} stopped: ${JSON.stringify(this.counters)}`);
    }
  }

  private async serve(stub: JobQueueServiceClient, runner: JobRunner, queues: string[], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.waitForSlot(signal);
      if (signal.aborted) break;
      const startedAt = performance.now();
      let error: JobQueueError | undefined;
      try {
        await waitForReady(stub, signal);
        if (signal.aborted) break;
        await this.runSession(stub, runner, queues, signal);
      } catch (caught) {
        if (caught instanceof InvalidArgumentError) {
          this.logger.error(`the server refused the subscription: ${caught.message}`);
          throw caught;
        }
        // Reconnecting would only send the same token again (the Go worker stops here too).
        if (caught instanceof UnauthenticatedError || caught instanceof PermissionDeniedError) {
          this.logger.error(`the server refused the worker's credentials (${caught.reason}): ${caught.message}`);
          throw caught;
        }
        if (!(caught instanceof JobQueueError)) throw caught; // a bug, not a network failure
        error = caught;
      } finally {
        this.session = undefined;
        this.backoff.connectionEnded(performance.now() - startedAt);
      }
      if (signal.aborted || error === undefined) break;
      const delayMs = this.backoff.nextDelayMs();
      this.logger.warn(`Lease stream lost (${error.codeName}: ${error.message}); reconnecting in ${Math.round(delayMs)} ms`);
      this.emit("disconnected", { error, delayMs });
      await pause(delayMs, signal);
    }
  }

  private async runSession(stub: JobQueueServiceClient, runner: JobRunner, queues: string[], signal: AbortSignal): Promise<void> {
    const subscribe = this.subscription(queues);
    const connection = this.counters.connections + 1;
    const session = new LeaseSession({
      stub,
      subscribe,
      runner,
      counters: this.counters,
      logger: this.logger,
      fallbackLeaseMs: this.leaseDurationMs,
      onSubscribed: () => this.emit("subscribed", { queues, maxInFlight: subscribe.maxInFlight, connection }),
      onAbandoned: (done) => this.trackAbandoned(done),
    });
    this.session = session;
    await session.run(signal, this.gracePeriodMs);
  }

  private subscription(queues: string[]): Subscribe {
    return {
      queues,
      // Handlers abandoned by a broken stream still run: they count against the window.
      maxInFlight: this.concurrency - this.abandoned.size,
      workerId: this.workerId,
      leaseDuration: this.leaseDurationMs === undefined ? undefined : toDuration(this.leaseDurationMs, "lease_duration"),
    };
  }

  private trackAbandoned(done: Promise<void>): void {
    this.abandoned.add(done);
    void done.finally(() => {
      this.abandoned.delete(done);
      this.session?.setWindow(this.concurrency - this.abandoned.size);
    });
  }

  /** Waits while abandoned handlers still fill every slot. */
  private async waitForSlot(signal: AbortSignal): Promise<void> {
    while (this.abandoned.size >= this.concurrency && !signal.aborted) {
      this.logger.warn(`waiting for ${this.abandoned.size} abandoned handlers to return before reconnecting`);
      const stopped = whenAborted(signal);
      await Promise.race([Promise.race(this.abandoned), stopped.promise]);
      stopped.dispose();
    }
  }
}

/** Waits until the channel is connected (or `signal` aborts); UnavailableError after a while. */
function waitForReady(stub: JobQueueServiceClient, signal: AbortSignal): Promise<void> {
  const stopped = whenAborted(signal);
  const ready = new Promise<void>((resolve, reject) => {
    stub.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (error) =>
      error ? reject(new UnavailableError(`could not connect: ${summary(error)}`, { cause: error })) : resolve(),
    );
  });
  ready.catch(() => undefined); // the race below may have settled on the signal already
  return Promise.race([ready, stopped.promise]).finally(() => stopped.dispose());
}
