/** Runs one job's handler and turns what it did into the ack or fail to send. */

import { performance } from "node:perf_hooks";

import { context, type Tracer } from "@opentelemetry/api";

import type { JobContext, LeaseContext } from "./context.js";
import * as convert from "./convert.js";
import { NonRetryableError, RetryAfterError } from "./errors.js";
import type { Duration } from "./gen/google/protobuf/duration.js";
import { Durability } from "./gen/jobqueue/v1/job.js";
import type { AckRequest, FailRequest } from "./gen/jobqueue/v1/job_queue_service.js";
import { markFailed, startProcess, tracerOf } from "./tracing.js";
import type { JsonObject, Logger } from "./types.js";

/**
 * A job handler: gets the JSON payload and the job's context; returns the job's result (a
 * JSON object, or nothing) to ack it. Throwing fails the attempt (retried after the job's
 * backoff); NonRetryableError makes the job dead at once; RetryAfterError sets the delay.
 * When the server stops the job (cancelled, or past its execution timeout), `ctx.signal`
 * aborts with a JobStoppedError and whatever the handler returns or throws is ignored.
 */
export type Handler<P = JsonObject> = (
  payload: P,
  ctx: JobContext,
) => Promise<Record<string, unknown> | void | undefined> | Record<string, unknown> | void | undefined;

/** What to send for a finished handler. */
export type Settlement = { kind: "ack"; request: AckRequest } | { kind: "fail"; request: FailRequest };

/** A failure report keeps the top of the stack and stays under the server's 4 KiB limit. */
const STACK_LINES = 20;
const MAX_ERROR_CHARS = 3500;

export class JobRunner {
  /** `ackDurability`: the level every ack asks for (unset: the server's default); `tracer`: for the process spans. */
  constructor(
    private readonly handlers: ReadonlyMap<string, Handler>,
    private readonly logger: Logger,
    private readonly ackDurability: Durability = Durability.DURABILITY_UNSPECIFIED,
    private readonly tracer: Tracer = tracerOf(undefined),
  ) {}

  /**
   * The handler's outcome, with how long it ran (`handlerDuration`, for the server's
   * processing-time histogram: docs/monitoring.md); never rejects.
   */
  async run(ctx: LeaseContext): Promise<Settlement> {
    const handler = this.handlers.get(ctx.queue);
    if (handler === undefined) {
      // Retryable: during a rolling deploy, another worker may handle this queue. No handler
      // ran, so the fail carries no handlerDuration.
      return fail(ctx, `no handler for queue ${JSON.stringify(ctx.queue)} in this worker`);
    }
    let result: unknown;
    let threw = false;
    let error: unknown;
    const { span, active } = startProcess(this.tracer, ctx);
    const began = performance.now();
    try {
      // Current while the handler runs: the spans it starts are children of the process span.
      result = await context.with(active, () => handler(ctx.job.payload, ctx));
    } catch (thrown) {
      threw = true;
      error = thrown;
    }
    const ranMs = performance.now() - began;
    const settlement = threw ? this.failed(ctx, error) : ack(ctx, result, this.ackDurability);
    settlement.request.handlerDuration = handlerDuration(ranMs);
    // A stopped job (cancelled, timed out) or a dropped outcome failed too, whatever the handler did.
    if (threw) markFailed(span, error);
    else if (ctx.signal.aborted) markFailed(span, ctx.signal.reason);
    else if (settlement.kind === "fail") markFailed(span, settlement.request.error);
    span.end();
    return settlement;
  }

  /** The fail for a handler that threw `error`. */
  private failed(ctx: LeaseContext, error: unknown): Settlement {
    if (ctx.stopReason !== undefined) {
      // Dropped by the session: the server took the job back.
      this.logger.debug(`job ${ctx.jobId} ended after it was stopped (${ctx.stopReason}): ${summary(error)}`);
      return fail(ctx, describe(error));
    }
    if (error instanceof NonRetryableError) {
      this.logger.warn(`job ${ctx.jobId} failed for good: ${error.message}`);
      return fail(ctx, describe(error), { nonRetryable: true });
    }
    if (error instanceof RetryAfterError) {
      this.logger.info(`job ${ctx.jobId} asked to retry in ${error.delayMs} ms: ${error.message}`);
      return fail(ctx, describe(error), { retryDelayMs: Math.max(0, error.delayMs) });
    }
    this.logger.warn(`job ${ctx.jobId} failed (attempt ${ctx.attempt} of ${ctx.maxAttempts}): ${summary(error)}`);
    return fail(ctx, describe(error));
  }
}

/**
 * The longest handler run the server takes in an ack or fail (handler_duration: 0 to 7
 * days); a longer one is reported as this, since the server would refuse the settlement.
 */
const MAX_HANDLER_MS = 7 * 86_400_000;

/** A handler's run of `ms` (from performance.now()) as the ack's or fail's handlerDuration. */
export function handlerDuration(ms: number): Duration {
  const whole = Math.round(Math.min(Math.max(ms, 0), MAX_HANDLER_MS) * 1_000_000); // ns
  return { seconds: Math.floor(whole / 1e9), nanos: whole % 1e9 };
}

/** An ack carrying `result`, or a non-retryable fail when it is not a JSON object. */
export function ack(ctx: LeaseContext, result: unknown, durability = Durability.DURABILITY_UNSPECIFIED): Settlement {
  const request: AckRequest = {
    jobId: ctx.jobId,
    leaseToken: ctx.leaseToken,
    result: undefined,
    durability,
    handlerDuration: undefined, // set by JobRunner.run once the handler ran
  };
  if (result === undefined || result === null) return { kind: "ack", request };
  if (typeof result !== "object" || Array.isArray(result)) {
    const what = Array.isArray(result) ? "an array" : `a ${typeof result}`;
    return fail(ctx, `the handler must return an object or nothing, not ${what}`, { nonRetryable: true });
  }
  let json: JsonObject;
  try {
    json = convert.toJsonObject(result, "result");
  } catch (error) {
    return fail(ctx, `the handler returned a result that is not JSON: ${summary(error)}`, { nonRetryable: true });
  }
  request.result = json;
  return { kind: "ack", request };
}

export function fail(
  ctx: LeaseContext,
  message: string,
  options: { nonRetryable?: boolean; retryDelayMs?: number } = {},
): Settlement {
  const request: FailRequest = {
    jobId: ctx.jobId,
    leaseToken: ctx.leaseToken,
    error: message,
    nonRetryable: options.nonRetryable ?? false,
    retryDelay: options.retryDelayMs === undefined ? undefined : convert.toDuration(options.retryDelayMs, "retry_delay"),
    handlerDuration: undefined, // set by JobRunner.run once the handler ran
  };
  return { kind: "fail", request };
}

/** `Name: message` of anything thrown. */
export function summary(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** The error's summary, then the top of its stack. */
export function describe(error: unknown): string {
  const head = summary(error);
  const stack = error instanceof Error && typeof error.stack === "string" ? error.stack : "";
  const frames = stack
    .split("\n")
    .filter((line) => line.trimStart().startsWith("at "))
    .slice(0, STACK_LINES);
  const text = frames.length > 0 ? `${head}\n${frames.join("\n")}` : head;
  return text.length > MAX_ERROR_CHARS ? text.slice(0, MAX_ERROR_CHARS) : text;
}
