/**
 * LeaseSession: one Lease stream, from Subscribe to its end.
 *
 * Jobs start as soon as they arrive: the window (max_in_flight) is the worker's
 * concurrency, so the server never sends a job that would have to wait. Acks, fails and
 * extends go out through the Outbox, one LeaseRequest per tick.
 *
 * When the stream ends, every job it held belongs to the server again (it releases them
 * to their queue at once), so a handler still running then is abandoned: its signal is
 * aborted and its result dropped. Acking with that lease's token on a new stream would be
 * refused with LEASE_LOST, and the job may already run elsewhere.
 */

import { status as GrpcStatus, type ClientDuplexStream, type ServiceError, type StatusObject } from "@grpc/grpc-js";

import { LeaseContext } from "./context.js";
import { JobQueueError, LeaseLostError, UnavailableError, fromServiceError, fromStatus } from "./errors.js";
import { summary, type JobRunner, type Settlement } from "./execution.js";
import {
  ConfirmationKind,
  type Confirmation,
  type JobQueueServiceClient,
  type LeaseRequest,
  type LeaseResponse,
  type LeasedJob,
  type Subscribe,
} from "./gen/jobqueue/v1/job_queue_service.js";
import { LeaseKeeper } from "./keeper.js";
import { Outbox, emptyRequest } from "./outbox.js";
import { refusal, type Refusal } from "./refusal.js";
import { pause, whenAborted } from "./timing.js";
import type { Logger } from "./types.js";

/** An ack or fail refused with UNAVAILABLE is sent again after this (see refusal.ts). */
export const RESEND_DELAY_MS = 500;
/** How long to wait for the server to confirm the last settlements after we half-close. */
export const FLUSH_TIMEOUT_MS = 5_000;

/** What the worker counts across its sessions. */
export interface WorkerCounters {
  /** Lease streams opened. */
  connections: number;
  /** Jobs delivered. */
  received: number;
  /** Acks confirmed. */
  succeeded: number;
  /** Fails confirmed. */
  failed: number;
  /** Acks and fails the server refused (LEASE_LOST, ...). */
  rejected: number;
  /** Settlements sent again after UNAVAILABLE. */
  resent: number;
  /** Handlers whose outcome was dropped: their stream ended or they ran past a hard stop. */
  abandoned: number;
}

export function newCounters(): WorkerCounters {
  return { connections: 0, received: 0, succeeded: 0, failed: 0, rejected: 0, resent: 0, abandoned: 0 };
}

export interface SessionOptions {
  stub: JobQueueServiceClient;
  subscribe: Subscribe;
  runner: JobRunner;
  counters: WorkerCounters;
  logger: Logger;
  /** The lease length to assume when a grant does not tell it. */
  fallbackLeaseMs: number | undefined;
  /** Called once the Subscribe went out on the stream. */
  onSubscribed: () => void;
  /** Called with each abandoned handler's completion (it still occupies a slot until then). */
  onAbandoned: (done: Promise<void>) => void;
}

interface Running {
  ctx: LeaseContext;
  done: Promise<void>;
}

type StreamEnd = { error: JobQueueError | undefined };

export class LeaseSession {
  private readonly options: SessionOptions;
  private readonly running = new Map<string, Running>();
  private readonly unconfirmed = new Map<string, Settlement>();
  private readonly keeper: LeaseKeeper;
  private readonly outbox: Outbox;
  private call: ClientDuplexStream<LeaseRequest, LeaseResponse> | undefined;
  private draining = false;
  private ended = false;
  private halfClosed = false;
  private idle: (() => void) | undefined;

  constructor(options: SessionOptions) {
    this.options = options;
    this.outbox = new Outbox((request) => this.write(request));
    this.keeper = new LeaseKeeper((request) => this.outbox.extend(request));
  }

  /** Handlers running now. */
  get size(): number {
    return this.running.size;
  }

  /** Asks the server for a different window (a later Subscribe may change only that). */
  setWindow(maxInFlight: number): void {
    if (this.draining || this.ended) return;
    this.outbox.resubscribe({ queues: [], maxInFlight, workerId: "", leaseDuration: undefined });
  }

  /**
   * Runs until `stop` aborts (then drains for up to `graceMs`) and resolves, or rejects with
   * a JobQueueError when the stream breaks.
   */
  async run(stop: AbortSignal, graceMs: number): Promise<void> {
    const call = this.options.stub.lease();
    this.call = call;
    this.options.counters.connections += 1;
    const ended = new Promise<StreamEnd>((resolve) => {
      call.on("error", (error: ServiceError) => resolve({ error: fromServiceError(error) as JobQueueError }));
      call.on("status", (status: StatusObject) => {
        if (status.code === GrpcStatus.OK) resolve({ error: undefined });
      });
    });
    call.on("data", (response: LeaseResponse) => this.receive(response));
    call.write({ ...emptyRequest(), subscribe: this.options.subscribe }, (error?: Error | null) => {
      if (!error && !this.ended) this.options.onSubscribed();
    });
    const stopped = whenAborted(stop);
    try {
      const first = await Promise.race([ended, stopped.promise.then(() => undefined)]);
      if (first !== undefined) {
        throw first.error ?? new UnavailableError("the server ended the Lease stream");
      }
      await this.drain(ended, graceMs);
    } finally {
      stopped.dispose();
      this.end();
    }
  }

  // -- stream I/O ------------------------------------------------------------------------

  private write(request: LeaseRequest): void {
    if (this.ended || this.halfClosed || this.call === undefined) return;
    this.call.write(request);
  }

  private receive(response: LeaseResponse): void {
    for (const leased of response.jobs) this.start(leased);
    for (const confirmation of response.confirmations) this.confirm(confirmation);
  }

  /** Stop taking jobs, let handlers finish within the grace period, flush, half-close. */
  private async drain(ended: Promise<StreamEnd>, graceMs: number): Promise<void> {
    this.draining = true;
    // A window of zero pauses delivery: each ack would otherwise make room for a job we would
    // not start (the server counts an attempt for it, then releases it when we close).
    this.outbox.resubscribe({ queues: [], maxInFlight: 0, workerId: "", leaseDuration: undefined });
    const { logger } = this.options;
    if (this.running.size > 0) {
      logger.info(`stopping: waiting up to ${graceMs} ms for ${this.running.size} running jobs`);
      const allDone = new Promise<void>((resolve) => (this.idle = resolve));
      const grace = new AbortController();
      const streamEnd = ended.then(() => grace.abort());
      await Promise.race([allDone, pause(graceMs, grace.signal), streamEnd]);
      grace.abort();
      this.idle = undefined;
    }
    if (this.running.size > 0) {
      logger.warn(`grace period over: abandoning ${this.running.size} running jobs; the server gives them out again`);
      this.abandonRunning(new Error("the worker stopped before the job finished"));
    }
    // The last settlements go out, then the half-close; the server confirms and ends.
    this.outbox.close();
    this.halfClosed = true;
    this.call?.end();
    const timeout = new AbortController();
    const done = await Promise.race([ended, pause(FLUSH_TIMEOUT_MS, timeout.signal).then(() => undefined)]);
    timeout.abort();
    if (done === undefined) logger.warn("the server did not end the Lease stream in time; cancelling it");
    else if (done.error !== undefined && !(done.error.code === GrpcStatus.CANCELLED)) {
      logger.warn(`the Lease stream ended with ${done.error.codeName}: ${done.error.message}`);
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.keeper.stop();
    this.abandonRunning(new UnavailableError("the Lease stream that delivered the job ended"));
    for (const settlement of this.unconfirmed.values()) {
      this.options.logger.warn(`the ${settlement.kind} of job ${settlement.request.jobId} was not confirmed before the stream ended`);
    }
    this.unconfirmed.clear();
    this.call?.removeAllListeners("data");
    // Swallow late errors (the CANCELLED of our own cancel) instead of crashing the process.
    this.call?.on("error", () => undefined);
    this.call?.cancel();
  }

  // -- jobs ------------------------------------------------------------------------------

  private start(leased: LeasedJob): void {
    const { counters, logger, runner } = this.options;
    counters.received += 1;
    if (this.draining || this.ended) {
      // Not started: the server releases it to its queue when the stream closes.
      logger.debug(`stopping: not starting job ${leased.job?.id ?? "?"}`);
      return;
    }
    const ctx = new LeaseContext(leased, this.options.subscribe.workerId, this.options.fallbackLeaseMs);
    if (this.running.has(ctx.jobId)) {
      logger.error(`job ${ctx.jobId} was delivered again while it runs here; ignoring the second delivery`);
      return;
    }
    const done = runner
      .run(ctx)
      .then((settlement) => this.finish(ctx, settlement))
      .catch((error: unknown) => logger.error(`settling job ${ctx.jobId} failed: ${summary(error)}`));
    this.running.set(ctx.jobId, { ctx, done });
    this.keeper.track(ctx.jobId, ctx.leaseToken, ctx.leaseLengthMs);
  }

  private finish(ctx: LeaseContext, settlement: Settlement): void {
    const { counters, logger } = this.options;
    if (this.running.get(ctx.jobId)?.ctx === ctx) {
      this.running.delete(ctx.jobId);
      this.keeper.forget(ctx.jobId);
    }
    if (ctx.abandoned) {
      counters.abandoned += 1;
      logger.warn(`dropping the ${settlement.kind} of job ${ctx.jobId}: its Lease stream ended before the handler did`);
    } else {
      if (ctx.leaseLost) {
        // Still sent: the server refuses it with LEASE_LOST, which frees this stream's slot.
        logger.warn(`job ${ctx.jobId} finished after its lease was lost; the server will refuse its ${settlement.kind}`);
      }
      this.settle(settlement);
    }
    if (this.running.size === 0) this.idle?.();
  }

  /** Every running handler's signal is aborted and its outcome will be dropped. */
  private abandonRunning(reason: Error): void {
    for (const { ctx, done } of this.running.values()) {
      ctx.abandoned = true;
      ctx.abort(reason);
      this.options.onAbandoned(done);
    }
    this.running.clear();
    this.keeper.stop();
  }

  private settle(settlement: Settlement): void {
    this.unconfirmed.set(settlement.request.jobId, settlement);
    if (settlement.kind === "ack") this.outbox.ack(settlement.request);
    else this.outbox.fail(settlement.request);
  }

  // -- confirmations ---------------------------------------------------------------------

  private confirm(confirmation: Confirmation): void {
    const error = fromStatus(confirmation.status);
    if (confirmation.kind === ConfirmationKind.CONFIRMATION_KIND_EXTEND) {
      this.extended(confirmation, error);
      return;
    }
    const kind = confirmation.kind === ConfirmationKind.CONFIRMATION_KIND_ACK ? "ack" : "fail";
    const settlement = this.unconfirmed.get(confirmation.jobId);
    this.unconfirmed.delete(confirmation.jobId);
    if (error === undefined) {
      this.countSettled(kind);
      return;
    }
    const next = refusal(kind, error);
    if (next.action === "settled") {
      this.options.logger.warn(`job ${confirmation.jobId} was settled, but not confirmed on disk: ${error.message}`);
      this.countSettled(kind);
    } else {
      this.refused(confirmation.jobId, settlement, error, next);
    }
  }

  private countSettled(kind: "ack" | "fail"): void {
    if (kind === "ack") this.options.counters.succeeded += 1;
    else this.options.counters.failed += 1;
  }

  /** Acts on a refused ack or fail as its reason says (refusal.ts). */
  private refused(jobId: string, settlement: Settlement | undefined, error: JobQueueError, next: Refusal): void {
    const { counters, logger } = this.options;
    if (settlement !== undefined && next.action === "resend") {
      this.resendLater(settlement, error);
      return;
    }
    counters.rejected += 1;
    if (error instanceof LeaseLostError) {
      logger.warn(`the server refused to settle job ${jobId}: lease lost (${error.message})`);
    } else {
      logger.error(`the server refused to settle job ${jobId}: ${error.reason} ${error.message}`);
    }
    if (settlement !== undefined && next.action === "fail") {
      const { leaseToken } = settlement.request;
      const request = { jobId, leaseToken, error: next.message, nonRetryable: next.nonRetryable, retryDelay: undefined };
      this.settle({ kind: "fail", request });
    }
  }

  private resendLater(settlement: Settlement, error: JobQueueError): void {
    const { counters, logger } = this.options;
    logger.warn(`the server could not settle job ${settlement.request.jobId} (${summary(error)}); sending it again`);
    this.unconfirmed.set(settlement.request.jobId, settlement);
    counters.resent += 1;
    setTimeout(() => {
      if (this.ended || this.unconfirmed.get(settlement.request.jobId) !== settlement) return;
      if (settlement.kind === "ack") this.outbox.ack(settlement.request);
      else this.outbox.fail(settlement.request);
    }, RESEND_DELAY_MS).unref();
  }

  private extended(confirmation: Confirmation, error: JobQueueError | undefined): void {
    const running = this.running.get(confirmation.jobId);
    if (running === undefined) return; // the handler finished meanwhile
    const { ctx } = running;
    if (error === undefined) {
      if (confirmation.leaseExpireTime !== undefined) ctx.deadline = confirmation.leaseExpireTime;
    } else if (error instanceof UnavailableError) {
      this.options.logger.warn(`could not extend the lease of job ${ctx.jobId}: ${error.message}`);
    } else {
      ctx.leaseLost = true;
      this.keeper.forget(ctx.jobId);
      ctx.abort(error);
      this.options.logger.warn(`the lease of job ${ctx.jobId} was lost (${error.reason}); the job may run elsewhere`);
    }
  }
}
