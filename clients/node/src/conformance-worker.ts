/**
 * The conformance worker (tests/conformance/README.md): the library's normal Worker with one
 * handler, registered for every queue it is given, that does what the payload's `action` says.
 *
 *   JOBQ_TARGET=127.0.0.1:50051 JOBQ_QUEUES=a,b JOBQ_CONCURRENCY=3 node dist/conformance-worker.js
 *
 * stdout carries only READY, START <job_id>, STOPPED <job_id> <reason> and END <job_id> lines;
 * logs go to stderr.
 * SIGTERM (or SIGINT) stops it gracefully and it exits 0; the `exit` action exits 3 at once.
 *
 * With JOBQ_TRACE_FILE set, the worker's spans are recorded in memory and, once it stopped
 * gracefully, written to that file as one JSON object per line (see `spanRecord`).
 */

import { existsSync, writeFileSync, writeSync } from "node:fs";

import { SpanKind, SpanStatusCode, type TracerProvider } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";

import {
  consoleLogger,
  JobStoppedError,
  NonRetryableError,
  Worker,
  type JobContext,
  type JsonObject,
  type LogLevel,
} from "./index.js";
import { sleep, whenAborted } from "./timing.js";

const WAIT_FILE_POLL_MS = 10;

function line(text: string): void {
  writeSync(1, `${text}\n`); // synchronous: the kit reads these lines as events, in order
}

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`conformance worker: ${name} is required`);
    process.exit(2);
  }
  return value;
}

function object(value: unknown): JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonObject) : {};
}

async function perform(payload: JsonObject, ctx: JobContext): Promise<JsonObject | undefined> {
  const result = object(payload["result"]);
  const message = String(payload["error"] ?? "failed");
  switch (payload["action"]) {
    case "ack":
      return result;
    case "echo":
      return {
        job_id: ctx.jobId,
        queue: ctx.queue,
        attempt: ctx.attempt,
        max_attempts: ctx.maxAttempts,
        payload,
        metadata: { ...ctx.metadata },
        worker_id: ctx.workerId,
      };
    case "fail":
      throw new Error(message);
    case "fail_permanent":
      throw new NonRetryableError(message);
    case "fail_until":
      if (ctx.attempt < Number(payload["attempt"])) throw new Error(message);
      return result;
    case "sleep":
      await sleep(Number(payload["ms"] ?? 0), ctx.signal);
      return result;
    case "wait_file":
      await waitFile(String(payload["path"]), ctx);
      return result;
    case "wait_stop": {
      await whenAborted(ctx.signal).promise;
      const reason: unknown = ctx.signal.reason;
      if (reason instanceof JobStoppedError) line(`STOPPED ${ctx.jobId} ${reason.reason}`);
      else console.error(`conformance worker: job ${ctx.jobId} aborted without a stop: ${String(reason)}`);
      return result; // ignored by the runtime
    }
    case "progress": {
      ctx.progress(Number(payload["percent"]), String(payload["message"] ?? ""));
      const lines = payload["lines"];
      for (const text of Array.isArray(lines) ? lines : []) ctx.log(String(text));
      await waitFile(String(payload["path"]), ctx);
      return result;
    }
    case "exit":
      process.exit(3);
    default:
      throw new NonRetryableError("unknown action");
  }
}

async function waitFile(path: string, ctx: JobContext): Promise<void> {
  while (!existsSync(path)) await sleep(WAIT_FILE_POLL_MS, ctx.signal);
}

/** A finished span as the cross-language tests read it (the tracing spec's format). */
function spanRecord(span: ReadableSpan): Record<string, unknown> {
  const { traceId, spanId } = span.spanContext();
  return {
    name: span.name,
    kind: SpanKind[span.kind],
    trace_id: traceId,
    span_id: spanId,
    parent_span_id: span.parentSpanContext?.spanId ?? "",
    links: span.links.map((link) => ({ trace_id: link.context.traceId, span_id: link.context.spanId })),
    attributes: span.attributes,
    status: SpanStatusCode[span.status.code],
  };
}

/** With JOBQ_TRACE_FILE: a tracer provider recording in memory, and how to write its spans to the file. */
async function traceRecorder(): Promise<{ provider: TracerProvider; save: () => Promise<void> } | undefined> {
  const file = process.env["JOBQ_TRACE_FILE"];
  if (file === undefined || file === "") return undefined;
  // Loaded only when asked for: the SDK is a devDependency, for tests, never the library's.
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const save = async (): Promise<void> => {
    await provider.forceFlush();
    writeFileSync(file, exporter.getFinishedSpans().map((span) => `${JSON.stringify(spanRecord(span))}\n`).join(""));
  };
  return { provider, save };
}

async function main(): Promise<void> {
  const tracing = await traceRecorder();
  const queues = env("JOBQ_QUEUES")
    .split(",")
    .map((queue) => queue.trim())
    .filter((queue) => queue !== "");
  const worker = new Worker(env("JOBQ_TARGET"), {
    queues,
    concurrency: Number(env("JOBQ_CONCURRENCY", "1")),
    workerId: env("JOBQ_WORKER_ID", `conformance-node-${process.pid}`),
    gracePeriodMs: Number(env("JOBQ_GRACE_SECONDS", "10")) * 1000,
    logger: consoleLogger((process.env["JOBQ_LOG_LEVEL"] as LogLevel | undefined) ?? "info"),
    tracerProvider: tracing?.provider,
  });
  for (const queue of queues) {
    worker.handle(queue, async (payload, ctx) => {
      line(`START ${ctx.jobId}`);
      try {
        return await perform(payload, ctx);
      } finally {
        line(`END ${ctx.jobId}`);
      }
    });
  }
  let ready = false;
  worker.on("subscribed", () => {
    if (!ready) line("READY");
    ready = true;
  });
  const stop = new AbortController();
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => stop.abort());
  await worker.run({ signal: stop.signal });
  await tracing?.save();
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error("conformance worker failed:", error);
  process.exit(1);
});
