/**
 * Outbox: acks, fails and extends waiting to go out, coalesced into one LeaseRequest per
 * tick of the event loop (split only past the size bounds below). Each message also carries
 * the progress reports pending then (see progress.ts).
 */

import {
  AckRequest,
  type ExtendRequest,
  type FailRequest,
  type LeaseRequest,
  type ProgressUpdate,
  type Subscribe,
} from "./gen/jobqueue/v1/job_queue_service.js";

/** Bounds on one LeaseRequest: acks carry results of up to 1 MiB; the server takes 64 MiB. */
export const MAX_ITEMS_PER_REQUEST = 1000;
export const MAX_BYTES_PER_REQUEST = 4 * 1024 * 1024;

type Item =
  | { kind: "ack"; request: AckRequest }
  | { kind: "fail"; request: FailRequest }
  | { kind: "extend"; request: ExtendRequest }
  | { kind: "progress"; request: ProgressUpdate };

function size(item: Item): number {
  switch (item.kind) {
    case "ack":
      return item.request.result === undefined ? 64 : AckRequest.encode(item.request).finish().length;
    case "fail":
      return 64 + Buffer.byteLength(item.request.error);
    case "extend":
      return 64;
    case "progress":
      return item.request.logs.reduce((total, line) => total + 4 + Buffer.byteLength(line), 64 + Buffer.byteLength(item.request.message));
  }
}

export function emptyRequest(): LeaseRequest {
  return { subscribe: undefined, acks: [], fails: [], extends: [], progress: [] };
}

export class Outbox {
  private items: Item[] = [];
  private subscribe: Subscribe | undefined;
  private scheduled = false;
  private closed = false;

  /**
   * `write` sends one message on the stream; `pendingProgress` hands over the progress
   * reports to send with it (called at each flush).
   */
  constructor(
    private readonly write: (request: LeaseRequest) => void,
    private readonly pendingProgress: () => ProgressUpdate[] = () => [],
  ) {}

  ack(request: AckRequest): void {
    this.put({ kind: "ack", request });
  }

  fail(request: FailRequest): void {
    this.put({ kind: "fail", request });
  }

  extend(request: ExtendRequest): void {
    this.put({ kind: "extend", request });
  }

  /** Sends a message soon even if nothing else is queued: progress reports are pending. */
  wake(): void {
    if (this.closed) return;
    this.schedule();
  }

  /** Sends a later Subscribe (a new window) with the next message. */
  resubscribe(subscribe: Subscribe): void {
    if (this.closed) return;
    this.subscribe = subscribe;
    this.schedule();
  }

  get pending(): number {
    return this.items.length;
  }

  /** Writes everything queued now, then drops whatever comes later. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  /** Writes everything queued now. */
  flush(): void {
    if (this.closed) return;
    for (const request of this.pendingProgress()) this.items.push({ kind: "progress", request });
    while (this.items.length > 0 || this.subscribe !== undefined) this.write(this.take());
  }

  private put(item: Item): void {
    if (this.closed) return;
    this.items.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after the I/O callbacks of this turn: every settlement made while
    // handling the same burst of responses or timers rides in one message.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private take(): LeaseRequest {
    const request = emptyRequest();
    if (this.subscribe !== undefined) {
      request.subscribe = this.subscribe;
      this.subscribe = undefined;
    }
    let bytes = 0;
    let count = 0;
    while (count < this.items.length && count < MAX_ITEMS_PER_REQUEST) {
      const item = this.items[count] as Item;
      bytes += size(item);
      if (bytes > MAX_BYTES_PER_REQUEST && count > 0) break;
      count += 1;
      if (item.kind === "ack") request.acks.push(item.request);
      else if (item.kind === "fail") request.fails.push(item.request);
      else if (item.kind === "extend") request.extends.push(item.request);
      else request.progress.push(item.request);
    }
    this.items = this.items.slice(count);
    return request;
  }
}
