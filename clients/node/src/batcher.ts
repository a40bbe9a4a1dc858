/**
 * Batcher: concurrent `enqueue` calls gathered into batches, each caller still settled with
 * its own id or error (docs/clients.md, "Producer batching"). This module holds the rule of
 * when a batch goes; batch-sender.ts where it goes (the client's EnqueueStream, or EnqueueBatch
 * calls to a server without it).
 */

import { blame, framedSize } from "./batch-wire.js";
import type { BatchSender } from "./batch-sender.js";
import { DeadlineExceededError, InternalError, InvalidArgumentError } from "./errors.js";
import { EnqueueRequest, type EnqueueResponse } from "./gen/jobqueue/v1/job_queue_service.js";
import type { BatchingOptions, EnqueueResult } from "./types.js";

/**
 * The documented defaults: a server's default `max_batch`, 4 MiB, 5 ms (as Kafka's producer
 * since 4.0: longer than a loaded round trip, so under load a batch that is not full waits for
 * the ones in flight and gathers as much as a round trip brings; fewer, bigger messages cost
 * less per job).
 */
export const DEFAULT_BATCHING: Readonly<Required<BatchingOptions>> = {
  maxJobs: 1000,
  maxBytes: 4 * 1024 * 1024,
  lingerMs: 5,
};

/** EnqueueBatch calls in flight at once: the second only for a batch that has lingered (or a full one). */
export const CALL_MAX_IN_FLIGHT = 2;
/**
 * On the EnqueueStream a message costs the server a fraction of a call, so a batch is full at
 * 32 jobs (or `maxJobs`, if fewer) and goes at once while fewer than 64 are unanswered (the
 * server reads 64 ahead of its answers): the server works on one while the next is gathered.
 * Measured with the Python client and 64 concurrent callers, 32-job messages made 1.4-1.6x the
 * jobs/s of one EnqueueBatch at a time.
 */
export const STREAM_BATCH_JOBS = 32;
export const STREAM_MAX_IN_FLIGHT = 64;

/** The settings with the defaults filled in; InvalidArgumentError naming the bad one. */
export function batchingSettings(options: BatchingOptions = {}): Required<BatchingOptions> {
  const settings = { ...DEFAULT_BATCHING, ...options };
  const check = (ok: boolean, name: keyof BatchingOptions, rule: string): void => {
    if (!ok) throw new InvalidArgumentError(`batching.${name}: must be ${rule}`, { field: `batching.${name}` });
  };
  check(Number.isInteger(settings.maxJobs) && settings.maxJobs >= 1, "maxJobs", "a positive integer");
  check(Number.isFinite(settings.maxBytes) && settings.maxBytes >= 1, "maxBytes", "a positive number");
  check(Number.isFinite(settings.lingerMs) && settings.lingerMs >= 0, "lingerMs", "a number of ms, 0 or more");
  return settings;
}

/** One caller's job, from `enqueue` until its promise settles. */
class Waiter {
  settled = false;
  /** The pending batch holding the job until it is sent. */
  batch: Pending | undefined;
  readonly size: number;
  private signal: AbortSignal | undefined;
  private onAbort: (() => void) | undefined;

  constructor(
    readonly request: Uint8Array,
    readonly deadline: number,
    private readonly onResolve: (result: EnqueueResult) => void,
    private readonly onReject: (error: unknown) => void,
  ) {
    this.size = framedSize(request);
  }

  watch(signal: AbortSignal, onAbort: () => void): void {
    if (this.settled) return; // refused while being placed (its deadline had passed)
    this.signal = signal;
    this.onAbort = onAbort;
    signal.addEventListener("abort", onAbort, { once: true });
  }

  resolve(result: EnqueueResult): void {
    if (this.settle()) this.onResolve(result);
  }

  reject(error: unknown): void {
    if (this.settle()) this.onReject(error);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.batch = undefined;
    if (this.onAbort !== undefined) this.signal?.removeEventListener("abort", this.onAbort);
    return true;
  }
}

/** The batch being filled for one durability level. */
class Pending {
  readonly waiters: Waiter[] = [];
  bytes = 0;
  /** The linger timer: one per batch, never one per job. */
  timer: NodeJS.Timeout | undefined;
  /** Its first job has waited `lingerMs`: it may go out beside a batch in flight. */
  lingered = false;
  /** Every job of it answered (or none left to send): what `flush` waits for. */
  private done = false;
  /** Made only for a flush: nothing per batch otherwise. */
  private onDone: Array<() => void> | undefined;

  constructor(readonly level: number) {}

  whenDone(): Promise<void> {
    if (this.done) return Promise.resolve();
    return new Promise((resolve) => (this.onDone ??= []).push(resolve));
  }

  markDone(): void {
    this.done = true;
    for (const resolve of this.onDone ?? []) resolve();
    this.onDone = undefined;
  }

  add(waiter: Waiter): void {
    waiter.batch = this;
    this.waiters.push(waiter);
    this.bytes += waiter.size;
  }

  remove(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return;
    this.waiters.splice(index, 1);
    this.bytes -= waiter.size;
  }
}

export class Batcher {
  /** Open batches, by durability level: one WAITAOF answers a whole batch, so levels never share one. */
  private readonly pending = new Map<number, Pending>();
  /** Batches closed (full) while every slot was taken, oldest first: each goes when a slot frees. */
  private readonly ready: Pending[] = [];
  /** Batches sent and not yet answered (resends included). */
  private readonly sending = new Set<Pending>();
  private sendScheduled = false;
  private closed = false;

  constructor(
    private readonly sender: BatchSender,
    private readonly settings: Required<BatchingOptions>,
  ) {}

  /** Queues one job; settles with its id, or with the error that refused it. */
  add(request: EnqueueRequest, deadline: number, signal?: AbortSignal): Promise<EnqueueResult> {
    if (this.closed) return Promise.reject(new Error("the client is closed"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const encoded = EnqueueRequest.encode(request).finish();
    return new Promise<EnqueueResult>((resolve, reject) => {
      const waiter = new Waiter(encoded, deadline, resolve, reject);
      this.place(waiter, request.durability);
      if (signal !== undefined) waiter.watch(signal, () => this.abort(waiter, signal.reason));
    });
  }

  /** Sends every open batch now and waits until every batch pending now is answered. */
  async flush(): Promise<void> {
    for (const batch of [...this.pending.values()]) this.closeBatch(batch);
    await Promise.all([...this.sending, ...this.ready].map((batch) => batch.whenDone()));
  }

  /** Refuses new jobs, flushes, then ends the stream (waiting for the server to end it). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    await this.sender.close();
  }

  /** Jobs that make a batch full: fewer on the stream, where the next one need not wait. */
  private get maxJobs(): number {
    return this.sender.streaming ? Math.min(this.settings.maxJobs, STREAM_BATCH_JOBS) : this.settings.maxJobs;
  }

  private get maxInFlight(): number {
    return this.sender.streaming ? STREAM_MAX_IN_FLIGHT : CALL_MAX_IN_FLIGHT;
  }

  private place(waiter: Waiter, level: number): void {
    let batch = this.pending.get(level);
    if (batch !== undefined && batch.bytes + waiter.size > this.settings.maxBytes) {
      this.closeBatch(batch);
      batch = undefined;
    }
    const target = batch ?? this.open(level);
    target.add(waiter);
    if (target.waiters.length >= this.maxJobs || target.bytes >= this.settings.maxBytes) this.closeBatch(target);
    else if (this.sending.size === 0) this.sendSoon();
    else this.linger(target);
  }

  private open(level: number): Pending {
    const batch = new Pending(level);
    this.pending.set(level, batch);
    return batch;
  }

  /** The linger timer: one per batch, never one per job. */
  private linger(batch: Pending): void {
    batch.timer ??= setTimeout(() => this.lingered(batch), this.settings.lingerMs);
  }

  /** Before its job was sent, an aborted call takes the job out; after, it only stops waiting. */
  private abort(waiter: Waiter, reason: unknown): void {
    waiter.batch?.remove(waiter);
    waiter.reject(reason);
  }

  private sendSoon(): void {
    if (this.sendScheduled) return;
    this.sendScheduled = true;
    // setImmediate runs after this turn's I/O callbacks and promise jobs: the callers of a
    // batch just answered enqueue their next jobs before the next batch leaves, and share it.
    setImmediate(() => {
      this.sendScheduled = false;
      this.sendOpen();
    });
  }

  /** Its first job has waited long enough: it goes, unless every slot is taken. */
  private lingered(batch: Pending): void {
    batch.lingered = true;
    batch.timer = undefined;
    if (this.pending.get(batch.level) === batch && this.sending.size < this.maxInFlight) this.closeBatch(batch);
  }

  /**
   * Sends the open batches that may go: all of them when nothing is in flight, else those
   * that have lingered, while a slot is free (one batch at a time under load, each as big as
   * a round trip gathers, unless full). The others linger.
   */
  private sendOpen(): void {
    const idle = this.sending.size === 0;
    for (const batch of [...this.pending.values()]) {
      if (idle || (batch.lingered && this.sending.size < this.maxInFlight)) this.closeBatch(batch);
      else this.linger(batch);
    }
  }

  /** No job joins `batch` any more: it goes now if a slot is free, else first when one frees. */
  private closeBatch(batch: Pending): void {
    clearTimeout(batch.timer);
    batch.timer = undefined;
    if (this.pending.get(batch.level) === batch) this.pending.delete(batch.level);
    if (this.sending.size < this.maxInFlight) this.start(batch);
    else this.ready.push(batch);
  }

  private start(batch: Pending): void {
    for (const waiter of batch.waiters) waiter.batch = undefined;
    if (batch.waiters.length === 0) {
      batch.markDone(); // every caller aborted before it went
      return;
    }
    this.sending.add(batch);
    void this.deliver(batch);
  }

  /** Sends until every job is answered; a refusal naming one job fails it and resends the rest. */
  private async deliver(batch: Pending): Promise<void> {
    try {
      let live = unexpired(batch.waiters);
      while (live.length > 0) {
        let responses: readonly EnqueueResponse[];
        try {
          responses = await this.sender.send(live.map((w) => w.request), earliest(live), batch.level);
        } catch (error) {
          const blamed = blame(error, live.length);
          if (blamed === undefined) {
            for (const waiter of live) waiter.reject(error);
            return;
          }
          live[blamed.index]?.reject(blamed.error);
          // The server wrote none of them: the rest go again, less the callers that gave up.
          live = unexpired(live);
          continue;
        }
        answer(live, responses);
        return;
      }
    } finally {
      // Now, before the callers just settled run again (their continuations are promise
      // jobs): the jobs they enqueue next see the slot free and leave together at once.
      this.sending.delete(batch);
      batch.markDone();
      while (this.ready.length > 0 && this.sending.size < this.maxInFlight) this.start(this.ready.shift() as Pending);
      if (this.pending.size > 0) this.sendSoon();
    }
  }
}

/** The waiters still waiting whose deadline has not passed; the others fail unsent. */
function unexpired(waiters: readonly Waiter[]): Waiter[] {
  const now = Date.now();
  return waiters.filter((waiter) => {
    if (waiter.settled) return false;
    if (waiter.deadline > now) return true;
    waiter.reject(new DeadlineExceededError("the call's deadline passed before its job was sent; nothing was enqueued"));
    return false;
  });
}

/** A batch carries the earliest deadline of its callers. */
function earliest(waiters: readonly Waiter[]): number {
  let deadline = Infinity;
  for (const waiter of waiters) deadline = Math.min(deadline, waiter.deadline);
  return deadline;
}

function answer(waiters: readonly Waiter[], responses: readonly EnqueueResponse[]): void {
  if (responses.length !== waiters.length) {
    const error = new InternalError(`the server answered ${responses.length} of a batch of ${waiters.length} jobs`);
    for (const waiter of waiters) waiter.reject(error);
    return;
  }
  waiters.forEach((waiter, index) => {
    const { jobId, duplicate } = responses[index] as EnqueueResponse;
    waiter.resolve({ jobId, duplicate });
  });
}
