/**
 * OpenTelemetry tracing, on the API alone (no SDK: without one every span is non-recording and
 * nothing is injected). A `send <queue>` PRODUCER span around each enqueue, whose context rides
 * in each job's metadata (`traceparent`, `tracestate`) and in the call's headers; a
 * `process <queue>` CONSUMER span around each handler, child of and linked to that context.
 */

import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  isSpanContextValid,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";

/** The instrumentation scope, the same in every client library. */
export const TRACER_NAME = "jobqueue";

/** A span context as text-map entries: `traceparent`, `tracestate` (or the global propagator's). */
export type Carrier = Record<string, string>;

/** What the process span needs of a job (a LeaseContext). */
export interface ProcessedJob {
  readonly jobId: string;
  readonly queue: string;
  readonly attempt: number;
  readonly workerId: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export function tracerOf(provider: TracerProvider | undefined): Tracer {
  return (provider ?? trace.getTracerProvider()).getTracer(TRACER_NAME);
}

function messaging(operation: "send" | "process", queue: string | undefined): Attributes {
  const attributes: Attributes = {
    "messaging.system": "jobqueue",
    "messaging.operation.type": operation,
    "messaging.operation.name": operation,
  };
  if (queue !== undefined) attributes["messaging.destination.name"] = queue;
  return attributes;
}

/**
 * Runs `send` in a `send <queue>` PRODUCER span (`send` alone when `queue` is undefined: jobs
 * for several queues). `send` gets the span's context to inject, empty when the span is not
 * recording. The span is not made current: the batcher's stream outlives any one caller.
 */
export async function traceSend<T>(
  tracer: Tracer,
  queue: string | undefined,
  attributes: Attributes,
  send: (span: Span, carrier: Carrier) => Promise<T>,
): Promise<T> {
  const name = queue === undefined ? "send" : `send ${queue}`;
  const span = tracer.startSpan(name, { kind: SpanKind.PRODUCER, attributes: { ...messaging("send", queue), ...attributes } });
  try {
    return await send(span, carrierOf(span));
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** The queue every job goes to, or undefined when they go to several. */
export function commonQueue(jobs: readonly { queue: string }[]): string | undefined {
  const queue = jobs[0]?.queue;
  return jobs.every((job) => job.queue === queue) ? queue : undefined;
}

/** Adds the carrier's entries to a job's metadata, unless the caller put a `traceparent` there (theirs is kept). */
export function injectJob(metadata: Record<string, string>, carrier: Carrier): void {
  if (Object.hasOwn(metadata, "traceparent")) return;
  for (const [key, value] of Object.entries(carrier)) metadata[key] ??= value;
}

/**
 * Starts the `process <queue>` CONSUMER span of a job: child of the context in its metadata and
 * linked to it (a root span without one). Run the handler in the returned context.
 */
export function startProcess(tracer: Tracer, job: ProcessedJob): { span: Span; active: Context } {
  const parent = extract(job.metadata);
  const origin = trace.getSpanContext(parent);
  const attributes: Attributes = {
    ...messaging("process", job.queue),
    "messaging.message.id": job.jobId,
    "jobqueue.job.attempt": job.attempt,
    "jobqueue.worker.id": job.workerId,
  };
  const links = origin === undefined ? [] : [{ context: origin }];
  const span = tracer.startSpan(`process ${job.queue}`, { kind: SpanKind.CONSUMER, attributes, links }, parent);
  return { span, active: trace.setSpan(parent, span) };
}

/** ERROR status, with the error recorded as an exception event. */
export function markFailed(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const message = error instanceof Error ? error.message : String(error);
  span.recordException(error instanceof Error ? error : message);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

// -- propagation ---------------------------------------------------------------------------

/** The API's default propagator is a no-op with no fields: then W3C TraceContext is used directly. */
function globalPropagator(): boolean {
  return propagation.fields().length > 0;
}

/** The span's context as carrier entries; none when it is not recording (the no-cost path). */
function carrierOf(span: Span): Carrier {
  const carrier: Carrier = {};
  if (!span.isRecording()) return carrier;
  if (globalPropagator()) {
    propagation.inject(trace.setSpan(context.active(), span), carrier);
    return carrier;
  }
  const { traceId, spanId, traceFlags, traceState } = span.spanContext();
  carrier["traceparent"] = `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, "0")}`;
  const state = traceState?.serialize() ?? "";
  if (state !== "") carrier["tracestate"] = state;
  return carrier;
}

/** The context a job's metadata carries; the root context when it carries none (or a malformed one). */
function extract(metadata: Readonly<Record<string, string>>): Context {
  if (globalPropagator()) return propagation.extract(ROOT_CONTEXT, metadata);
  const remote = parseTraceparent(metadata["traceparent"], metadata["tracestate"]);
  return remote === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, remote);
}

/** `version-traceid-spanid-flags`, lower-case hex (W3C Trace Context). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export function parseTraceparent(value: string | undefined, state: string | undefined): SpanContext | undefined {
  const match = TRACEPARENT.exec(value?.trim() ?? "");
  if (match === null) return undefined;
  const [version, traceId, spanId, flags, rest] = match.slice(1) as [string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields (later versions may append more).
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  const remote: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true };
  if (state !== undefined && state.trim() !== "") remote.traceState = createTraceState(state);
  return isSpanContextValid(remote) ? remote : undefined; // all-zero ids are invalid
}
