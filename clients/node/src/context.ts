/** JobContext: what a handler knows about the job it runs, beyond the payload. */

import * as convert from "./convert.js";
import type { LeasedJob } from "./gen/jobqueue/v1/job_queue_service.js";
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
   * Aborted when the job's outcome will no longer be accepted: the worker stopped hard
   * (the grace period ran out), the stream that delivered the job broke, or the lease was
   * lost. `signal.reason` says which. Pass it to fetch() and friends.
   */
  readonly signal: AbortSignal;
  /** Everything the server sent about the job. */
  readonly job: Job;
}

/** The worker's side of a JobContext: the deadline moves, the signal can be aborted. */
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
  private readonly controller = new AbortController();

  constructor(leased: LeasedJob, workerId: string, fallbackLeaseMs: number | undefined) {
    if (leased.job === undefined) throw new Error("the server leased a job without its record");
    this.job = convert.job(leased.job);
    this.leaseToken = leased.leaseToken;
    this.workerId = workerId;
    this.deadline = leased.leaseExpireTime ?? new Date(Date.now() + (fallbackLeaseMs ?? DEFAULT_LEASE_MS));
    this.leaseLengthMs = leaseLength(this.job, leased.leaseExpireTime, fallbackLeaseMs);
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

  abort(reason: Error): void {
    this.controller.abort(reason);
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
