/**
 * ProgressQueue: the progress and log lines handlers report (`ctx.progress`, `ctx.log`),
 * held until a message on the Lease stream carries them as ProgressUpdate entries.
 *
 * Reports are not round trips: they ride with the next message the worker sends anyway (an
 * ack, an extend), and when none goes out, they are sent on their own at most
 * {@link PROGRESS_INTERVAL_MS} after the first of them was queued. A job's latest progress
 * replaces the one before it (the server keeps only the latest); its log lines are all sent,
 * in order, {@link MAX_LINES_PER_UPDATE} per update.
 */

import { InvalidArgumentError } from "./errors.js";
import type { ProgressUpdate } from "./gen/jobqueue/v1/job_queue_service.js";

/** The longest a report waits for a message to carry it. */
export const PROGRESS_INTERVAL_MS = 100;
/** Log lines per ProgressUpdate (the server's bound): more are split over several updates. */
export const MAX_LINES_PER_UPDATE = 100;
/** Characters of a progress message or of a log line (the server's bound): longer ones are cut. */
export const MAX_TEXT_CHARS = 1024;

/** What one job reported since its last update went out. */
interface Pending {
  leaseToken: string;
  /** The latest progress, when one was reported. */
  progress: { percent: number; message: string } | undefined;
  logs: string[];
}

export class ProgressQueue {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * `due` asks for a message carrying what is pending (it calls `take`); it is called
   * `intervalMs` after a report finds the queue empty, unless `take` came first.
   */
  constructor(
    private readonly due: () => void,
    private readonly intervalMs: number = PROGRESS_INTERVAL_MS,
  ) {}

  /** Queues `percent` and `message` (cut to {@link MAX_TEXT_CHARS}) as the job's latest progress. */
  progress(jobId: string, leaseToken: string, percent: number, message: string): void {
    const progress = { percent: checkPercent(percent), message: cut(message) };
    this.entry(jobId, leaseToken).progress = progress;
  }

  /** Queues one log line (cut to {@link MAX_TEXT_CHARS}). */
  log(jobId: string, leaseToken: string, line: string): void {
    this.entry(jobId, leaseToken).logs.push(cut(line));
  }

  /** Whether something of this job waits to be sent. */
  has(jobId: string): boolean {
    return this.pending.has(jobId);
  }

  /** Jobs with something waiting to be sent. */
  get size(): number {
    return this.pending.size;
  }

  /** Everything pending, as the updates to send (oldest job first); the queue is left empty. */
  take(): ProgressUpdate[] {
    this.clearTimer();
    const updates: ProgressUpdate[] = [];
    for (const [jobId, { leaseToken, progress, logs }] of this.pending) {
      updates.push(...progressUpdates(jobId, leaseToken, progress, logs));
    }
    this.pending.clear();
    return updates;
  }

  /** Forgets what a job reported and was not sent yet (its lease is gone). */
  drop(jobId: string): void {
    this.pending.delete(jobId);
    if (this.pending.size === 0) this.clearTimer();
  }

  /** Forgets everything pending and stops the timer. */
  stop(): void {
    this.pending.clear();
    this.clearTimer();
  }

  private entry(jobId: string, leaseToken: string): Pending {
    let entry = this.pending.get(jobId);
    if (entry === undefined || entry.leaseToken !== leaseToken) {
      entry = { leaseToken, progress: undefined, logs: [] };
      this.pending.set(jobId, entry);
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.due();
      }, this.intervalMs);
      this.timer.unref(); // the stream keeps the process alive, not this timer
    }
    return entry;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The updates carrying one job's report: the progress (if any) with the first
 * {@link MAX_LINES_PER_UPDATE} lines, then one update per further block of lines, with no
 * progress (`percent` unset and an empty message leave the job's progress as it was).
 */
export function progressUpdates(
  jobId: string,
  leaseToken: string,
  progress: { percent: number; message: string } | undefined,
  logs: readonly string[],
): ProgressUpdate[] {
  const updates: ProgressUpdate[] = [];
  if (progress !== undefined || logs.length > 0) {
    const first: ProgressUpdate = { jobId, leaseToken, message: "", logs: logs.slice(0, MAX_LINES_PER_UPDATE) };
    if (progress !== undefined) {
      first.percent = progress.percent;
      first.message = progress.message;
    }
    updates.push(first);
  }
  for (let start = MAX_LINES_PER_UPDATE; start < logs.length; start += MAX_LINES_PER_UPDATE) {
    updates.push({ jobId, leaseToken, message: "", logs: logs.slice(start, start + MAX_LINES_PER_UPDATE) });
  }
  return updates;
}

/** `percent`, unless it is not a number from 0 to 100 (InvalidArgumentError, field `percent`). */
export function checkPercent(percent: number): number {
  if (typeof percent !== "number" || !(percent >= 0 && percent <= 100)) {
    throw new InvalidArgumentError(`percent: must be a number from 0 to 100, not ${String(percent)}`, { field: "percent" });
  }
  return percent;
}

/** `text` cut to its first `max` characters (Unicode code points, as the server counts them). */
export function cut(text: string, max: number = MAX_TEXT_CHARS): string {
  const value = String(text);
  if (value.length <= max) return value; // UTF-16 units: never fewer than code points
  let end = 0;
  for (let count = 0; count < max && end < value.length; count += 1) {
    const code = value.codePointAt(end) as number;
    end += code > 0xffff ? 2 : 1;
  }
  return value.slice(0, end);
}
