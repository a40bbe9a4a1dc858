/**
 * Batcher: concurrent `enqueue` calls gathered into EnqueueBatch calls, each caller still
 * settled with its own id or error (docs/clients.md, "Producer batching").
 */

import { blame, frameBatch, framedSize } from "./batch-wire.js";
import { DeadlineExceededError, InternalError, InvalidArgumentError } from "./errors.js";
import { EnqueueRequest, type EnqueueBatchResponse } from "./gen/jobqueue/v1/job_queue_service.js";
import type { BatchingOptions, EnqueueResult } from "./types.js";

/**
 * The documented defaults: a server's default `max_batch`, 4 MiB, 5 ms (as Kafka's producer
 * since 4.0: longer than a loaded call's round trip, so under load one batch is in flight at a
 * time, each as big as a round trip gathers; fewer, bigger calls cost less per job).
 */
export const DEFAULT_BATCHING: Readonly<Required<BatchingOptions>> = {
  maxJobs: 1000,
  maxBytes: 4 * 1024 * 1024,
  lingerMs: 5,
};

/** Batches in flight at once: the second only for a batch that has lingered (or a full one). */
const MAX_IN_FLIGHT = 2;

/** Sends an encoded EnqueueBatchRequest with an absolute deadline (ms since the epoch). */
export type SendBatch = (body: Buffer, deadline: number) => Promise<EnqueueBatchResponse>;

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

  constructor(readonly level: number) {}

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
  /** By durability level: one WAITAOF answers a whole batch, so levels never share one. */
  private readonly pending = new Map<number, Pending>();
  /** Batches sent and not yet answered. */
  private inFlight = 0;
  /** Their deliveries (resends included), for `flush`. */
  private readonly flights = new Set<Promise<void>>();
  private sendScheduled = false;
  private closed = false;

  constructor(
    private readonly sendBatch: SendBatch,
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

  /** Sends every pending batch now and waits until every batch in flight is answered. */
  async flush(): Promise<void> {
    this.sendAll(true);
    await Promise.all(this.flights);
  }

  /** Refuses new jobs, then flushes. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private place(waiter: Waiter, level: number): void {
    let batch = this.pending.get(level);
    if (batch !== undefined && batch.bytes + waiter.size > this.settings.maxBytes) {
      this.send(batch);
      batch = undefined;
    }
    const target = batch ?? this.open(level);
    target.add(waiter);
    if (target.waiters.length >= this.settings.maxJobs) this.send(target);
    else if (this.inFlight === 0) this.sendSoon();
    else target.timer ??= setTimeout(() => this.lingered(target), this.settings.lingerMs);
  }

  private open(level: number): Pending {
    const batch = new Pending(level);
    this.pending.set(level, batch);
    return batch;
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
      this.sendAll();
    });
  }

  /** Its first job has waited long enough: it goes, unless two batches are out already. */
  private lingered(batch: Pending): void {
    batch.lingered = true;
    batch.timer = undefined;
    if (this.pending.get(batch.level) === batch && this.inFlight < MAX_IN_FLIGHT) this.send(batch);
  }

  /**
   * Sends the pending batches that may go: all of them when nothing is in flight (or on a
   * flush), else only those that have lingered, while a slot is free.
   */
  private sendAll(force = false): void {
    for (const batch of [...this.pending.values()]) {
      if (force || this.inFlight === 0 || (batch.lingered && this.inFlight < MAX_IN_FLIGHT)) this.send(batch);
    }
  }

  private send(batch: Pending): void {
    clearTimeout(batch.timer);
    if (this.pending.get(batch.level) === batch) this.pending.delete(batch.level);
    for (const waiter of batch.waiters) waiter.batch = undefined;
    if (batch.waiters.length === 0) return;
    this.inFlight += 1;
    const flight: Promise<void> = this.deliver(batch.waiters).finally(() => this.flights.delete(flight));
    this.flights.add(flight);
  }

  /** Sends until every job is answered; a refusal naming one job fails it and resends the rest. */
  private async deliver(waiters: Waiter[]): Promise<void> {
    try {
      let live = unexpired(waiters);
      while (live.length > 0) {
        let response: EnqueueBatchResponse;
        try {
          response = await this.sendBatch(frameBatch(live.map((w) => w.request)), earliest(live));
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
        answer(live, response);
        return;
      }
    } finally {
      // Now, before the callers just settled run again (their continuations are promise
      // jobs): the jobs they enqueue next see no batch in flight and leave together at once.
      this.inFlight -= 1;
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

function answer(waiters: readonly Waiter[], response: EnqueueBatchResponse): void {
  const { responses } = response;
  if (responses.length !== waiters.length) {
    const error = new InternalError(`the server answered ${responses.length} of a batch of ${waiters.length} jobs`);
    for (const waiter of waiters) waiter.reject(error);
    return;
  }
  waiters.forEach((waiter, index) => {
    const { jobId, duplicate } = responses[index] as (typeof responses)[number];
    waiter.resolve({ jobId, duplicate });
  });
}
