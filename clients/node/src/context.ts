/** JobContext: what a handler knows about the job it runs, beyond the payload. */

import * as convert from "./convert.js";
import { JobStoppedError, type JobStopReason } from "./errors.js";
import type { LeasedJob } from "./gen/jobqueue/v1/job_queue_service.js";
import { checkPercent } from "./progress.js";
import type { Job } from "./types.js";

/** The server's default lease length, for a job whose grant does not tell its own. */
export const DEFAULT_LEASE_MS = 30_000;

/** Handed to every handler call next to the payload. */
export interface JobContext {
  readonly jobId: string;
  readonly queue: string;
  /** This delivery's number, counted from 1. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** The binary payload (empty when the job has none). */
  readonly payloadBytes: Uint8Array;
  /** Proof of the lease; the worker acks, fails and extends with it. */
  readonly leaseToken: string;
  /** When the lease expires unless extended (the worker extends it; updated on each extend). */
  readonly deadline: Date;
  /** The worker's id, shown on the job while it is active. */
  readonly workerId: string;
  /**
   * Aborted when the job's outcome will no longer be accepted: the server told the worker
   * to stop the job (`signal.reason` is a {@link JobStoppedError}: `reason` "cancelled" when
   * Client.cancel was called, "timed_out" when the attempt ran past the job's
   * `executionTimeoutMs`), the worker stopped hard (the grace period ran out), the stream
   * that delivered the job broke, or the lease was lost. `signal.reason` says which. Pass
   * it to fetch() and friends; after it aborted, what the handler returns or throws is ignored.
   */
  readonly signal: AbortSignal;
  /** Everything the server sent about the job. */
  readonly job: Job;
  /**
   * Reports how far the job is: `percent` (0 to 100) and what it is doing (`message`, cut at
   * 1,024 characters), shown by `getStatus` and `watchJob` while it runs. Not a round trip:
   * queued and sent on the worker's stream with its next message, within 100 ms; a later
   * report replaces one not sent yet. Ignored once the handler returned or the job was
   * stopped. InvalidArgumentError (field `percent`) for anything but a number from 0 to 100.
   */
  progress(percent: number, message?: string): void;
  /**
   * Appends `line` (cut at 1,024 characters) to the job's log, which keeps its last 100
   * lines. Sent like `progress`, every line in order.
   */
  log(line: string): void;
}

/** Where a LeaseContext's progress reports go (the session that runs it). */
export interface ProgressSink {
  progress(ctx: LeaseContext, percent: number, message: string): void;
  log(ctx: LeaseContext, line: string): void;
}

/** The worker's side of a JobContext: the deadline moves, the signal can be aborted, the job stopped. */
export class LeaseContext implements JobContext {
  readonly job: Job;
  readonly leaseToken: string;
  readonly workerId: string;
  /** The lease length the worker keeps extending by, in ms. */
  readonly leaseLengthMs: number;
  deadline: Date;
  /** Set when an extend was refused: the job may run elsewhere now. */
  leaseLost = false;
  /** Set when the stream that delivered the job ended before the handler did. */
  abandoned = false;
  /** Set when the server told the worker to stop the job: nothing is settled for it. */
  stopReason: JobStopReason | undefined;
  private readonly controller = new AbortController();
  private readonly sink: ProgressSink | undefined;

  /** `sink` takes the handler's progress reports (without one, they are dropped). */
  constructor(leased: LeasedJob, workerId: string, fallbackLeaseMs: number | undefined, sink?: ProgressSink) {
    if (leased.job === undefined) throw new Error("the server leased a job without its record");
    this.job = convert.job(leased.job);
    this.leaseToken = leased.leaseToken;
    this.workerId = workerId;
    this.deadline = leased.leaseExpireTime ?? new Date(Date.now() + (fallbackLeaseMs ?? DEFAULT_LEASE_MS));
    this.leaseLengthMs = leaseLength(this.job, leased.leaseExpireTime, fallbackLeaseMs);
    this.sink = sink;
  }

  get jobId(): string {
    return this.job.id;
  }
  get queue(): string {
    return this.job.queue;
  }
  get attempt(): number {
    return this.job.attempts;
  }
  get maxAttempts(): number {
    return this.job.maxAttempts;
  }
  get metadata(): Readonly<Record<string, string>> {
    return this.job.metadata;
  }
  get payloadBytes(): Uint8Array {
    return this.job.payloadBytes;
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  progress(percent: number, message = ""): void {
    checkPercent(percent);
    this.sink?.progress(this, percent, String(message));
  }

  log(line: string): void {
    this.sink?.log(this, String(line));
  }

  abort(reason: Error): void {
    this.controller.abort(reason);
  }

  /** Marks the job stopped by the server and aborts the signal with a JobStoppedError. */
  stop(reason: JobStopReason): void {
    this.stopReason = reason;
    this.abort(new JobStoppedError(this.jobId, reason));
  }
}

/**
 * The grant's deadline minus the job's start time (both on the server's clock) is the
 * lease length, whether it came from the job, the stream or the server default.
 */
function leaseLength(job: Job, expires: Date | undefined, fallbackMs: number | undefined): number {
  if (expires !== undefined && job.startTime !== undefined) {
    const length = expires.getTime() - job.startTime.getTime();
    if (length > 0) return length;
  }
  return job.leaseDurationMs ?? fallbackMs ?? DEFAULT_LEASE_MS;
}
