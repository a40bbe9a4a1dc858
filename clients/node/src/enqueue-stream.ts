/**
 * EnqueueStream: a producer's batches on one stream, each answered in the order sent.
 *
 * A stream message costs the server a fraction of a unary call, and a batch need not wait for
 * the one before it to be answered. The stream is opened with the first batch and again with
 * the first batch after it breaks. A server without EnqueueStream (UNIMPLEMENTED) is
 * remembered: `send` then rejects with StreamUnsupportedError at once, and the caller sends
 * EnqueueBatch calls instead (batch-sender.ts).
 */

import { status as GrpcStatus, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";

import { frameStreamRequest } from "./batch-wire.js";
import { DeadlineExceededError, UnavailableError, fromServiceError, fromStatus } from "./errors.js";
import type { EnqueueResponse, EnqueueStreamResponse } from "./gen/jobqueue/v1/job_queue_service.js";

/** The stream as grpc-js gives it, writing requests the batcher framed itself. */
export type EnqueueDuplex = ClientDuplexStream<Buffer, EnqueueStreamResponse>;

/** The server has no EnqueueStream: nothing sent on it was written; send EnqueueBatch calls. */
export class StreamUnsupportedError extends Error {
  constructor() {
    super("the server has no EnqueueStream");
    this.name = "StreamUnsupportedError";
  }
}

/** setTimeout's limit: a longer delay would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * An open call keeps Node's event loop alive (grpc-js refs the connection while a call is
 * active): a stream left open would keep a program that never closes its client from ever
 * exiting, which unary calls did not. So a stream with nothing unanswered for this long is
 * ended; a producer sending a batch a second or more keeps its stream.
 */
export const STREAM_IDLE_MS = 1_000;

/** One batch written and not yet answered. */
class Unanswered {
  /** Its caller was answered: by the server, or by the batch's deadline passing. */
  settled = false;
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly sequence: number,
    private readonly onResolve: (responses: EnqueueResponse[]) => void,
    private readonly onReject: (error: unknown) => void,
  ) {}

  resolve(responses: EnqueueResponse[]): void {
    if (this.settle()) this.onResolve(responses);
  }

  reject(error: unknown): void {
    if (this.settle()) this.onReject(error);
  }

  private settle(): boolean {
    clearTimeout(this.timer);
    if (this.settled) return false;
    this.settled = true;
    return true;
  }
}

/** One EnqueueStream call: what was written on it and is not yet answered, oldest first. */
class Session {
  readonly waiting: Unanswered[] = [];
  /** Set when an answer came out of order: the call is cancelled and fails with it. */
  private failure: Error | undefined;
  private error: ServiceError | undefined;
  private code: GrpcStatus | undefined;
  private finished = false;
  /** Resolves once every batch written on it is answered or failed. */
  readonly ended: Promise<void>;
  private markEnded: () => void = () => undefined;

  /** `onBroken` is told when no batch may be written on it any more (its status, or a mismatch). */
  constructor(
    readonly call: EnqueueDuplex,
    private readonly onBroken: (session: Session, unsupported: boolean) => void,
  ) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    call.on("data", (response: EnqueueStreamResponse) => this.answer(response));
    // grpc-js emits "error" (a non-OK status) just before "status"; without a listener the
    // "error" event would be thrown.
    call.on("error", (error: ServiceError) => (this.error = error));
    call.on("status", ({ code }: { code: GrpcStatus }) => {
      this.code = code;
      this.onBroken(this, code === GrpcStatus.UNIMPLEMENTED && this.failure === undefined);
      // Answers received before the status may still be buffered: they come before "end".
      if (call.readableEnded) this.finish();
    });
    call.on("end", () => this.finish());
  }

  private answer(response: EnqueueStreamResponse): void {
    if (this.failure !== undefined) return;
    const next = this.waiting[0];
    if (next === undefined || response.sequence !== next.sequence) {
      const expected = next === undefined ? "none" : String(next.sequence);
      this.failure = new UnavailableError(
        `the server answered request ${response.sequence}, expected ${expected}; the jobs may be enqueued`,
      );
      this.onBroken(this, false);
      this.call.cancel(); // its status ends the session, failing every batch left with `failure`
      return;
    }
    this.waiting.shift();
    const error = fromStatus(response.error);
    if (error === undefined) next.resolve(response.responses);
    else next.reject(error);
  }

  /** The call is over and its answers read: every batch still unanswered gets its error. */
  private finish(): void {
    if (this.finished || this.code === undefined) return;
    this.finished = true;
    // Written or not, nobody can tell; after UNIMPLEMENTED nothing was, and they go as calls.
    let error: Error;
    if (this.failure !== undefined) error = this.failure;
    else if (this.code === GrpcStatus.UNIMPLEMENTED) error = new StreamUnsupportedError();
    else if (this.error !== undefined) error = fromServiceError(this.error) as Error;
    else error = new UnavailableError("the enqueue stream ended before answering; the jobs may be enqueued");
    for (const batch of this.waiting.splice(0)) batch.reject(error);
    this.markEnded();
  }
}

export class EnqueueStream {
  /** The server answered UNIMPLEMENTED: every later batch goes as an EnqueueBatch call. */
  unsupported = false;
  private session: Session | undefined;
  private sequence = 0;
  /** When the last batch was sent (ms since the epoch), for the idle check. */
  private lastSent = 0;
  /** One check per idle period, not one timer per batch. */
  private idleTimer: NodeJS.Timeout | undefined;

  /**
   * `open` starts an EnqueueStream call (with no deadline: it stays open while batches come);
   * `closeWaitMs` bounds how long `close` waits for the server to end it.
   */
  constructor(
    private readonly open: () => EnqueueDuplex,
    private readonly closeWaitMs: () => number,
  ) {}

  /**
   * Sends one batch (each request encoded); resolves with one response per job, or rejects
   * with the error that refused the whole batch, DeadlineExceededError when `deadline` (ms
   * since the epoch) passes unanswered (the stream goes on), the stream's error when it
   * breaks first, or StreamUnsupportedError.
   */
  send(requests: readonly Uint8Array[], deadline: number): Promise<EnqueueResponse[]> {
    if (this.unsupported) return Promise.reject(new StreamUnsupportedError());
    const session = this.session ?? this.start();
    this.lastSent = Date.now();
    this.sequence += 1;
    const body = frameStreamRequest(this.sequence, requests);
    return new Promise<EnqueueResponse[]>((resolve, reject) => {
      const batch = new Unanswered(this.sequence, resolve, reject);
      session.waiting.push(batch);
      const wait = deadline - Date.now();
      if (wait <= MAX_TIMER_MS) {
        // It stays in `waiting`: its answer still comes, in order, and is then dropped.
        batch.timer = setTimeout(
          () => batch.reject(new DeadlineExceededError("no answer to the batch before its deadline; its jobs may be enqueued")),
          Math.max(0, wait),
        );
      }
      session.call.write(body);
    });
  }

  /**
   * Ends the stream (half-close) and waits for the server to end it: it answers what it
   * read first. Call it once every batch is answered; a batch sent later opens a new stream.
   */
  async close(): Promise<void> {
    const session = this.session;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (session === undefined) return;
    this.session = undefined;
    session.call.end();
    let timer: NodeJS.Timeout | undefined;
    const waitMs = Math.min(this.closeWaitMs(), MAX_TIMER_MS);
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs)));
    // A server that never ends it is not waited for beyond the client's timeout.
    if (await Promise.race([session.ended.then(() => false), late])) session.call.cancel();
    clearTimeout(timer);
  }

  private start(): Session {
    const session = new Session(this.open(), (broken, unsupported) => {
      if (unsupported) this.unsupported = true;
      if (this.session === broken) this.session = undefined; // the next batch opens a new one
    });
    this.session = session;
    this.checkIdle(STREAM_IDLE_MS);
    return session;
  }

  /** Ends the stream once nothing was sent for STREAM_IDLE_MS and every batch is answered. */
  private checkIdle(delay: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const session = this.session;
      if (session === undefined) return;
      const quiet = Date.now() - this.lastSent;
      if (quiet >= STREAM_IDLE_MS && session.waiting.length === 0) {
        this.session = undefined; // the next batch opens a new stream
        session.call.end(); // the server ends it in turn, and the connection stops holding the loop
      } else {
        // Batches still unanswered: look again a whole period later (not spinning meanwhile).
        this.checkIdle(session.waiting.length > 0 ? STREAM_IDLE_MS : STREAM_IDLE_MS - quiet);
      }
    }, delay);
    // The timer alone must not keep the program running.
    this.idleTimer.unref();
  }
}
