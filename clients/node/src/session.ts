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
 *
 * A JobStop (the job was cancelled, or its attempt ran past its execution timeout) aborts
 * the handler's signal with a JobStoppedError; nothing is settled for the job and its lease
 * is no longer extended. The server counts its slot free at once, but the handler may take
 * a while to return: until it does, the session asks for a window one smaller, and a job
 * the server sent into that slot meanwhile waits (its lease extended) until a slot frees,
 * so that never more than the window's handlers run at once.
 *
 * Handlers' progress reports wait in a ProgressQueue until the next message carries them.
 */

import { status as GrpcStatus, type ClientDuplexStream, type ServiceError, type StatusObject } from "@grpc/grpc-js";

import { LeaseContext, type ProgressSink } from "./context.js";
import {
  JobQueueError,
  LeaseLostError,
  ReplicationNotConfirmedError,
  UnavailableError,
  fromServiceError,
  fromStatus,
  type JobStopReason,
} from "./errors.js";
import { summary, type JobRunner, type Settlement } from "./execution.js";
import {
  ConfirmationKind,
  StopReason,
  type Confirmation,
  type JobQueueServiceClient,
  type JobStop,
  type LeaseRequest,
  type LeaseResponse,
  type LeasedJob,
  type Subscribe,
} from "./gen/jobqueue/v1/job_queue_service.js";
import { LeaseKeeper } from "./keeper.js";
import { Outbox, emptyRequest } from "./outbox.js";
import { ProgressQueue } from "./progress.js";
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
  /** Jobs the server told the worker to stop (cancelled, or past their execution timeout). */
  stopped: number;
}

export function newCounters(): WorkerCounters {
  return { connections: 0, received: 0, succeeded: 0, failed: 0, rejected: 0, resent: 0, abandoned: 0, stopped: 0 };
}

const STOP_REASONS = new Map<StopReason, JobStopReason>([
  [StopReason.STOP_REASON_CANCELLED, "cancelled"],
  [StopReason.STOP_REASON_TIMED_OUT, "timed_out"],
]);

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
  /**
   * Stopped handlers that have not returned yet, by lease token: their job may come back
   * (retried after a timeout) while they still run.
   */
  private readonly stopping = new Map<string, Running>();
  /** Jobs delivered while every slot was taken (by stopped handlers yet to return), oldest first. */
  private readonly waiting: LeaseContext[] = [];
  private readonly unconfirmed = new Map<string, Settlement>();
  private readonly keeper: LeaseKeeper;
  private readonly outbox: Outbox;
  private readonly progress: ProgressQueue;
  private readonly sink: ProgressSink;
  /** Handlers allowed to run at once: the window the worker asked for. */
  private window: number;
  private call: ClientDuplexStream<LeaseRequest, LeaseResponse> | undefined;
  private draining = false;
  private ended = false;
  private halfClosed = false;
  private idle: (() => void) | undefined;

  constructor(options: SessionOptions) {
    this.options = options;
    this.window = options.subscribe.maxInFlight;
    this.progress = new ProgressQueue(() => this.outbox.wake());
    this.outbox = new Outbox(
      (request) => this.write(request),
      () => this.progress.take(),
    );
    this.keeper = new LeaseKeeper((request) => this.outbox.extend(request));
    this.sink = {
      progress: (ctx, percent, message) => {
        if (this.reporting(ctx)) this.progress.progress(ctx.jobId, ctx.leaseToken, percent, message);
      },
      log: (ctx, line) => {
        if (this.reporting(ctx)) this.progress.log(ctx.jobId, ctx.leaseToken, line);
      },
    };
  }

  /** Handlers running now (stopped ones included until they return). */
  get size(): number {
    return this.running.size + this.stopping.size;
  }

  /** Asks the server for a different window (a later Subscribe may change only that). */
  setWindow(maxInFlight: number): void {
    if (this.draining || this.ended) return;
    this.window = maxInFlight;
    this.sendWindow();
    this.startWaiting();
  }

  /** The window less the slots of stopped handlers that have not returned yet. */
  private sendWindow(): void {
    if (this.draining || this.ended) return;
    const maxInFlight = Math.max(0, this.window - this.stopping.size);
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
    // Before the confirmations: an extend of a stopped job may be refused in the same message.
    for (const stop of response.stops) this.stop(stop);
    for (const confirmation of response.confirmations) this.confirm(confirmation);
  }

  /** Stop taking jobs, let handlers finish within the grace period, flush, half-close. */
  private async drain(ended: Promise<StreamEnd>, graceMs: number): Promise<void> {
    this.draining = true;
    // A window of zero pauses delivery: each ack would otherwise make room for a job we would
    // not start (the server counts an attempt for it, then releases it when we close).
    this.outbox.resubscribe({ queues: [], maxInFlight: 0, workerId: "", leaseDuration: undefined });
    this.dropWaiting("stopping");
    const { logger } = this.options;
    if (this.size > 0) {
      logger.info(`stopping: waiting up to ${graceMs} ms for ${this.size} running jobs`);
      const allDone = new Promise<void>((resolve) => (this.idle = resolve));
      const grace = new AbortController();
      const streamEnd = ended.then(() => grace.abort());
      await Promise.race([allDone, pause(graceMs, grace.signal), streamEnd]);
      grace.abort();
      this.idle = undefined;
    }
    if (this.size > 0) {
      logger.warn(`grace period over: abandoning ${this.size} running jobs; the server gives them out again`);
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
    this.progress.stop();
    this.dropWaiting("the stream ended");
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
    const { counters, logger } = this.options;
    counters.received += 1;
    if (this.draining || this.ended) {
      // Not started: the server releases it to its queue when the stream closes.
      logger.debug(`stopping: not starting job ${leased.job?.id ?? "?"}`);
      return;
    }
    const ctx = new LeaseContext(leased, this.options.subscribe.workerId, this.options.fallbackLeaseMs, this.sink);
    if (this.running.has(ctx.jobId) || this.waiting.some((waiting) => waiting.jobId === ctx.jobId)) {
      logger.error(`job ${ctx.jobId} was delivered again while it runs here; ignoring the second delivery`);
      return;
    }
    this.keeper.track(ctx.jobId, ctx.leaseToken, ctx.leaseLengthMs);
    if (this.size >= this.window) {
      // The slot of a stopped handler that has not returned yet: wait for it.
      logger.debug(`job ${ctx.jobId} waits for a free slot`);
      this.waiting.push(ctx);
      return;
    }
    this.runJob(ctx);
  }

  private runJob(ctx: LeaseContext): void {
    const { logger, runner } = this.options;
    // Running before the handler starts: what it reports before its first await counts.
    const entry: Running = { ctx, done: Promise.resolve() };
    this.running.set(ctx.jobId, entry);
    entry.done = runner
      .run(ctx)
      .then((settlement) => this.finish(ctx, settlement))
      .catch((error: unknown) => logger.error(`settling job ${ctx.jobId} failed: ${summary(error)}`));
  }

  /** Starts waiting jobs while slots are free. */
  private startWaiting(): void {
    while (this.waiting.length > 0 && this.size < this.window && !this.draining && !this.ended) {
      this.runJob(this.waiting.shift() as LeaseContext);
    }
  }

  /** Waiting jobs are not started: the server releases them when the stream closes. */
  private dropWaiting(why: string): void {
    for (const ctx of this.waiting.splice(0)) {
      this.keeper.forget(ctx.jobId);
      this.options.logger.debug(`${why}: not starting job ${ctx.jobId}`);
    }
  }

  /** Whether `ctx`'s progress reports are still wanted: its handler runs and its lease holds. */
  private reporting(ctx: LeaseContext): boolean {
    return !this.ended && !ctx.leaseLost && this.running.get(ctx.jobId)?.ctx === ctx;
  }

  private finish(ctx: LeaseContext, settlement: Settlement): void {
    const { counters, logger } = this.options;
    if (this.running.get(ctx.jobId)?.ctx === ctx) {
      this.running.delete(ctx.jobId);
      this.keeper.forget(ctx.jobId);
    }
    if (ctx.stopReason !== undefined) {
      logger.debug(`job ${ctx.jobId} was stopped (${ctx.stopReason}): its handler's outcome is dropped`);
      if (this.stopping.get(ctx.leaseToken)?.ctx === ctx) {
        this.stopping.delete(ctx.leaseToken);
        // Its slot is free again: the server may fill it.
        this.sendWindow();
      }
    } else if (ctx.abandoned) {
      counters.abandoned += 1;
      logger.warn(`dropping the ${settlement.kind} of job ${ctx.jobId}: its Lease stream ended before the handler did`);
    } else {
      if (ctx.leaseLost) {
        // Still sent: the server refuses it with LEASE_LOST, which frees this stream's slot.
        logger.warn(`job ${ctx.jobId} finished after its lease was lost; the server will refuse its ${settlement.kind}`);
      }
      // Its last reports go out before the ack or fail: the server drops those of a job the
      // stream no longer holds, and may read the parts of one message in any order.
      if (this.progress.has(ctx.jobId)) this.outbox.flush();
      this.settle(settlement);
    }
    this.startWaiting();
    if (this.size === 0) this.idle?.();
  }

  /** The server took the job back (cancelled, or timed out): stop its handler, settle nothing. */
  private stop(stop: JobStop): void {
    const { counters, logger } = this.options;
    let reason = STOP_REASONS.get(stop.reason);
    if (reason === undefined) {
      logger.warn(`the server stopped job ${stop.jobId} for an unknown reason (${stop.reason}); treating it as cancelled`);
      reason = "cancelled";
    }
    const running = this.running.get(stop.jobId);
    if (running !== undefined && running.ctx.leaseToken === stop.leaseToken) {
      const { ctx } = running;
      counters.stopped += 1;
      this.running.delete(ctx.jobId);
      this.stopping.set(ctx.leaseToken, running);
      this.keeper.forget(ctx.jobId);
      this.progress.drop(ctx.jobId);
      ctx.stop(reason);
      // Until the handler returns, its slot stays taken here.
      this.sendWindow();
      logger.info(`job ${ctx.jobId} was stopped by the server (${reason})`);
      return;
    }
    const index = this.waiting.findIndex((waiting) => waiting.jobId === stop.jobId && waiting.leaseToken === stop.leaseToken);
    if (index >= 0) {
      counters.stopped += 1;
      this.waiting.splice(index, 1);
      this.keeper.forget(stop.jobId);
      logger.info(`job ${stop.jobId} was stopped by the server (${reason}) before it started`);
      return;
    }
    // Its handler returned already: the server refuses (or refused) its ack or fail.
    logger.debug(`the server stopped job ${stop.jobId} (${reason}), which is not running here`);
  }

  /** Every running handler's signal is aborted and its outcome will be dropped. */
  private abandonRunning(reason: Error): void {
    for (const { ctx, done } of [...this.running.values(), ...this.stopping.values()]) {
      ctx.abandoned = true;
      ctx.abort(reason); // a stopped one keeps its JobStoppedError
      this.options.onAbandoned(done);
    }
    this.running.clear();
    this.stopping.clear();
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
      const where = error instanceof ReplicationNotConfirmedError ? "by its replicas" : "on disk";
      this.options.logger.warn(`job ${confirmation.jobId} was settled, but not confirmed ${where}: ${error.message}`);
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
      // The handler's run time goes with the fail: the server did not count the refused ack.
      const { leaseToken, handlerDuration } = settlement.request;
      const request = {
        jobId,
        leaseToken,
        error: next.message,
        nonRetryable: next.nonRetryable,
        retryDelay: undefined,
        handlerDuration,
      };
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
    const ctx = this.running.get(confirmation.jobId)?.ctx ?? this.waiting.find((waiting) => waiting.jobId === confirmation.jobId);
    if (ctx === undefined) return; // the handler finished or was stopped meanwhile
    if (error === undefined) {
      if (confirmation.leaseExpireTime !== undefined) ctx.deadline = confirmation.leaseExpireTime;
    } else if (error instanceof UnavailableError) {
      this.options.logger.warn(`could not extend the lease of job ${ctx.jobId}: ${error.message}`);
    } else {
      ctx.leaseLost = true;
      this.keeper.forget(ctx.jobId);
      const index = this.waiting.indexOf(ctx);
      if (index >= 0) this.waiting.splice(index, 1); // not started: nothing to settle
      ctx.abort(error);
      this.options.logger.warn(`the lease of job ${ctx.jobId} was lost (${error.reason}); the job may run elsewhere`);
    }
  }
}
