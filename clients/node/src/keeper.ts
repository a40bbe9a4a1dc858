/**
 * LeaseKeeper: extends the lease of every running job before it expires.
 *
 * A lease is extended once two thirds of its length have passed since it was granted or
 * last extended (about a third is left), measured on the local monotonic clock from when
 * the grant arrived or the extend was sent, never by comparing our clock with the server's.
 * Extends due within the next sixth of a lease ride along with one due now, so a busy
 * worker sends few, larger messages.
 */

import { performance } from "node:perf_hooks";

import { toDuration } from "./convert.js";
import type { ExtendRequest } from "./gen/jobqueue/v1/job_queue_service.js";

export const EXTEND_AT = 2 / 3;
export const RIDE_ALONG = 1 / 6;

interface Lease {
  token: string;
  lengthMs: number;
  /** performance.now() of the next extend. */
  nextAt: number;
}

export class LeaseKeeper {
  private readonly leases = new Map<string, Lease>();
  private timer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;

  /** `send` queues one ExtendRequest for the stream; `now` is injectable for tests. */
  constructor(
    private readonly send: (request: ExtendRequest) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  track(jobId: string, token: string, lengthMs: number): void {
    this.leases.set(jobId, { token, lengthMs, nextAt: this.now() + lengthMs * EXTEND_AT });
    this.schedule();
  }

  forget(jobId: string): void {
    this.leases.delete(jobId);
    if (this.leases.size === 0) this.stop();
  }

  get size(): number {
    return this.leases.size;
  }

  /** Stops the timer (the leases stay known until forgotten). */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeAt = Infinity;
  }

  /** Sends the extends that are due (or ride along) at `now`; returns how many. */
  extendDue(now: number = this.now()): number {
    let sent = 0;
    for (const [jobId, lease] of this.leases) {
      if (lease.nextAt - lease.lengthMs * RIDE_ALONG > now) continue;
      lease.nextAt = now + lease.lengthMs * EXTEND_AT;
      // The length is explicit: unset, the server would use the job's own lease length or
      // its default, not the stream's.
      this.send({ jobId, leaseToken: lease.token, leaseDuration: toDuration(lease.lengthMs, "lease_duration") });
      sent += 1;
    }
    return sent;
  }

  /** When the next extend is due (performance.now() time), or Infinity. */
  nextDueAt(): number {
    let next = Infinity;
    for (const lease of this.leases.values()) next = Math.min(next, lease.nextAt);
    return next;
  }

  private schedule(): void {
    const due = this.nextDueAt();
    if (due >= this.wakeAt && this.timer !== undefined) return;
    this.stop();
    if (due === Infinity) return;
    this.wakeAt = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wakeAt = Infinity;
      this.extendDue();
      this.schedule();
    }, Math.max(0, due - this.now()));
    this.timer.unref(); // the stream keeps the process alive, not this timer
  }
}
