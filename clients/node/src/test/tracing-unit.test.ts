// OpenTelemetry tracing against an in-test server (no jobq server), spans kept in memory: the
// send span's attributes and its context in the job metadata and the call headers, the process
// span's parent and link taken from the job metadata, and nothing injected without an SDK.

import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";

import { status as GrpcStatus, type Metadata, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  propagation,
  trace,
  type SpanContext,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";

import { Client, InvalidArgumentError, Worker, consoleLogger, type ClientOptions, type Handler } from "../index.js";
import type {
  EnqueueBatchRequest,
  EnqueueBatchResponse,
  EnqueueRequest,
  EnqueueResponse,
} from "../gen/jobqueue/v1/job_queue_service.js";
import { parseTraceparent } from "../tracing.js";
import { FakeServer, leased, response, statusError } from "./helpers/fake-server.js";
import { waitUntil } from "./helpers/wait.js";

const quiet = consoleLogger("error");
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
/** A producer's span context, as another process would have written it into the job. */
const REMOTE = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
const REMOTE_TRACEPARENT = `00-${REMOTE.traceId}-${REMOTE.spanId}-01`;

/** What the server received: each job's metadata, and the call's `traceparent`/`tracestate` headers. */
interface Received {
  jobs: Record<string, string>[];
  traceparent: string | undefined;
  tracestate: string | undefined;
}

function header(metadata: Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return value === undefined ? undefined : String(value);
}

function traceparentOf(span: ReadableSpan): string {
  const { traceId, spanId } = span.spanContext();
  return `00-${traceId}-${spanId}-01`;
}

/** A propagator of a header of its own, to tell it from the built-in W3C format. */
const customPropagator: TextMapPropagator = {
  inject: (ctx, carrier, setter: TextMapSetter) => {
    const span = trace.getSpanContext(ctx);
    if (span !== undefined) setter.set(carrier, "x-trace", `${span.traceId}:${span.spanId}`);
  },
  extract: (ctx, carrier, getter: TextMapGetter) => {
    const [traceId, spanId] = String(getter.get(carrier, "x-trace") ?? "").split(":");
    if (traceId === undefined || spanId === undefined) return ctx;
    return trace.setSpanContext(ctx, { traceId, spanId, traceFlags: 1, isRemote: true });
  },
  fields: () => ["x-trace"],
};

function only(kind: SpanKind): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.kind === kind);
}

before(() => {
  // Makes context.with effective, as an application's SDK setup does.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});

after(() => {
  context.disable();
});

describe("send spans (in-test server)", { timeout: 30_000 }, () => {
  let fake: FakeServer;
  let received: Received[];
  /** Each call's request metadata. */
  let headers: Metadata[];
  const clients: Client[] = [];

  beforeEach(async () => {
    exporter.reset();
    received = [];
    headers = [];
    let next = 0;
    const record = (jobs: readonly EnqueueRequest[], metadata: Metadata): void => {
      headers.push(metadata);
      received.push({
        jobs: jobs.map((job) => ({ ...job.metadata })),
        traceparent: header(metadata, "traceparent"),
        tracestate: header(metadata, "tracestate"),
      });
    };
    fake = await FakeServer.start({
      enqueue: (call: ServerUnaryCall<EnqueueRequest, EnqueueResponse>, callback: sendUnaryData<EnqueueResponse>) => {
        record([call.request], call.metadata);
        if (call.request.queue === "refused") callback(statusError(GrpcStatus.INVALID_ARGUMENT, "queue: refused here"));
        else callback(null, { jobId: `${call.request.queue}:${++next}`, duplicate: false });
      },
      // No enqueueStream: the batcher falls back to EnqueueBatch calls.
      enqueueBatch: (call: ServerUnaryCall<EnqueueBatchRequest, EnqueueBatchResponse>, callback: sendUnaryData<EnqueueBatchResponse>) => {
        record(call.request.requests, call.metadata);
        callback(null, { responses: call.request.requests.map((job) => ({ jobId: `${job.queue}:${++next}`, duplicate: false })) });
      },
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    fake.stop();
  });

  function client(options: ClientOptions = {}): Client {
    const made = new Client(fake.target, { timeoutMs: 5_000, tracerProvider: provider, ...options });
    clients.push(made);
    return made;
  }

  test("enqueue: a PRODUCER span `send <queue>` whose context is in the job's metadata and the call's headers", async () => {
    const { jobId } = await client({ batching: false }).enqueue("emails", { to: "a" }, { metadata: { tenant: "acme" } });
    const [span, ...others] = exporter.getFinishedSpans();
    assert.ok(span !== undefined);
    assert.equal(others.length, 0);
    assert.equal(span.name, "send emails");
    assert.equal(span.kind, SpanKind.PRODUCER);
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.equal(span.instrumentationScope.name, "jobqueue");
    assert.deepEqual(span.attributes, {
      "messaging.system": "jobqueue",
      "messaging.destination.name": "emails",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.message.id": jobId,
    });
    assert.deepEqual(received, [
      { jobs: [{ tenant: "acme", traceparent: traceparentOf(span) }], traceparent: traceparentOf(span), tracestate: undefined },
    ]);
  });

  test("the send span is a child of the active span, and carries its tracestate", async () => {
    const parent: SpanContext = { ...REMOTE, traceFlags: 1, isRemote: true, traceState: createTraceState("vendor=x") };
    await context.with(trace.setSpanContext(ROOT_CONTEXT, parent), () => client({ batching: false }).enqueue("emails"));
    const [span] = exporter.getFinishedSpans();
    assert.ok(span !== undefined);
    assert.equal(span.spanContext().traceId, REMOTE.traceId);
    assert.equal(span.parentSpanContext?.spanId, REMOTE.spanId);
    assert.deepEqual(received[0], {
      jobs: [{ traceparent: traceparentOf(span), tracestate: "vendor=x" }],
      traceparent: traceparentOf(span),
      tracestate: "vendor=x",
    });
  });

  test("a traceparent the caller put in the metadata is kept; the call still carries the send span's", async () => {
    await client({ batching: false }).enqueue("emails", {}, { metadata: { traceparent: REMOTE_TRACEPARENT } });
    const [span] = exporter.getFinishedSpans();
    assert.ok(span !== undefined);
    assert.deepEqual(received[0]?.jobs, [{ traceparent: REMOTE_TRACEPARENT }]);
    assert.equal(received[0]?.traceparent, traceparentOf(span));
  });

  test("batched enqueues: one span per call, each job carrying its own span's context", async () => {
    const results = await Promise.all([client().enqueue("a"), client().enqueue("a")]);
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 2);
    const jobs = received.flatMap((call) => call.jobs);
    assert.equal(jobs.length, 2);
    for (const [index, result] of results.entries()) {
      const span = spans.find((s) => s.attributes["messaging.message.id"] === result.jobId);
      assert.ok(span !== undefined, `no span for job ${index}`);
      assert.equal(span.name, "send a");
      assert.ok(jobs.some((job) => job["traceparent"] === traceparentOf(span)));
    }
    // The calls carry many callers' jobs: no one span's headers.
    assert.ok(received.every((call) => call.traceparent === undefined));
  });

  test("enqueueBatch: one span per call with the job count, its context in every job and the call", async () => {
    await client().enqueueBatch([{ queue: "a" }, { queue: "a", metadata: { k: "v" } }]);
    await client().enqueueBatch([{ queue: "a" }, { queue: "b" }]);
    const [same, mixed] = exporter.getFinishedSpans();
    assert.ok(same !== undefined && mixed !== undefined);
    assert.equal(same.name, "send a");
    assert.equal(same.kind, SpanKind.PRODUCER);
    assert.deepEqual(same.attributes, {
      "messaging.system": "jobqueue",
      "messaging.destination.name": "a",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.batch.message_count": 2,
    });
    assert.deepEqual(received[0], {
      jobs: [{ traceparent: traceparentOf(same) }, { k: "v", traceparent: traceparentOf(same) }],
      traceparent: traceparentOf(same),
      tracestate: undefined,
    });
    assert.equal(mixed.name, "send"); // jobs for several queues
    assert.equal(mixed.attributes["messaging.destination.name"], undefined);
    assert.equal(received[1]?.traceparent, traceparentOf(mixed));
  });

  test("a refused enqueue ends its span with ERROR and the exception recorded", async () => {
    await assert.rejects(client({ batching: false }).enqueue("refused"), InvalidArgumentError);
    const [span] = exporter.getFinishedSpans();
    assert.ok(span !== undefined);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.match(span.status.message ?? "", /refused here/);
    assert.equal(span.events[0]?.name, "exception");
    assert.equal(span.attributes["messaging.message.id"], undefined);
  });

  test("without a tracer provider (the API's no-op) nothing is injected and no header is added", async () => {
    await client({ batching: false, tracerProvider: undefined }).enqueue("emails", {}, { metadata: { k: "v" } });
    await client({ tracerProvider: undefined }).enqueueBatch([{ queue: "a" }]);
    assert.deepEqual(received, [
      { jobs: [{ k: "v" }], traceparent: undefined, tracestate: undefined },
      { jobs: [{}], traceparent: undefined, tracestate: undefined },
    ]);
    assert.equal(exporter.getFinishedSpans().length, 0);
  });

  test("the global propagator is used when one is registered", async () => {
    propagation.setGlobalPropagator(customPropagator);
    try {
      await client({ batching: false }).enqueue("emails");
    } finally {
      propagation.disable();
    }
    const [span] = exporter.getFinishedSpans();
    assert.ok(span !== undefined);
    const { traceId, spanId } = span.spanContext();
    assert.deepEqual(received[0]?.jobs, [{ "x-trace": `${traceId}:${spanId}` }]);
    assert.equal(header(headers[0] as Metadata, "x-trace"), `${traceId}:${spanId}`);
    assert.equal(received[0]?.traceparent, undefined);
  });
});

describe("process spans (scripted Lease stream)", { timeout: 30_000 }, () => {
  let fake: FakeServer;
  let stop: AbortController;
  let running: Promise<void> | undefined;

  beforeEach(async () => {
    exporter.reset();
    fake = await FakeServer.start();
    stop = new AbortController();
    running = undefined;
  });

  afterEach(async () => {
    stop.abort();
    await running;
    fake.stop();
  });

  function run(handler: Handler, traced = true): void {
    const options = { queues: ["q"], gracePeriodMs: 5_000, logger: quiet, workerId: "w-1", tracerProvider: traced ? provider : undefined };
    running = new Worker(fake.target, options).handle("q", handler).run({ signal: stop.signal });
  }

  /** Delivers job `q:<n>` with `metadata` and waits for its ack or fail. */
  async function deliver(id: string, metadata: Record<string, string>): Promise<void> {
    const job = leased(id, `token-${id}`);
    Object.assign(job.job?.metadata ?? {}, metadata);
    (await fake.subscribed()).write(response({ jobs: [job] }));
    await waitUntil(() => fake.settled().includes(id), `the settlement of ${id}`);
  }

  test("a CONSUMER span `process <queue>`, child of and linked to the context in the job's metadata", async () => {
    const tracer = provider.getTracer("handler");
    run(async () => {
      tracer.startSpan("inside the handler").end(); // a child of the process span: it is current
      return {};
    });
    await deliver("q:1", { traceparent: REMOTE_TRACEPARENT, tracestate: "vendor=x" });
    const [span] = only(SpanKind.CONSUMER);
    assert.ok(span !== undefined);
    assert.equal(span.name, "process q");
    assert.equal(span.spanContext().traceId, REMOTE.traceId);
    assert.equal(span.parentSpanContext?.spanId, REMOTE.spanId);
    assert.equal(span.parentSpanContext?.traceState?.get("vendor"), "x");
    assert.deepEqual(
      span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId })),
      [REMOTE],
    );
    assert.deepEqual(span.attributes, {
      "messaging.system": "jobqueue",
      "messaging.destination.name": "q",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.message.id": "q:1",
      "jobqueue.job.attempt": 1,
      "jobqueue.worker.id": "w-1",
    });
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    const [child] = only(SpanKind.INTERNAL);
    assert.equal(child?.parentSpanContext?.spanId, span.spanContext().spanId);
  });

  test("a handler that throws ends its span with ERROR; a job without a traceparent gets a root span, no link", async () => {
    run(() => {
      throw new Error("boom");
    });
    await deliver("q:1", { traceparent: "00-not-a-traceparent" });
    const [span] = only(SpanKind.CONSUMER);
    assert.ok(span !== undefined);
    assert.equal(span.parentSpanContext, undefined);
    assert.deepEqual(span.links, []);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.status.message, "boom");
    assert.equal(span.events[0]?.name, "exception");
  });

  test("the global propagator is used when one is registered", async () => {
    propagation.setGlobalPropagator(customPropagator);
    try {
      run(async () => ({}));
      await deliver("q:1", { "x-trace": `${REMOTE.traceId}:${REMOTE.spanId}`, traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01` });
      const [span] = only(SpanKind.CONSUMER);
      assert.equal(span?.parentSpanContext?.spanId, REMOTE.spanId);
    } finally {
      propagation.disable();
    }
  });

  test("without a tracer provider the handler runs as before and no span is recorded", async () => {
    let active: unknown = "unset";
    run(async () => {
      active = trace.getActiveSpan()?.isRecording();
      return {};
    }, false);
    await deliver("q:1", { traceparent: REMOTE_TRACEPARENT });
    assert.equal(active, false); // a non-recording span carrying the job's context
    assert.equal(exporter.getFinishedSpans().length, 0);
  });
});

describe("traceparent parsing", () => {
  test("accepts W3C version 00 (and later versions' extra fields), refuses the malformed", () => {
    assert.deepEqual(parseTraceparent(REMOTE_TRACEPARENT, undefined), { ...REMOTE, traceFlags: 1, isRemote: true });
    assert.equal(parseTraceparent(`01-${REMOTE.traceId}-${REMOTE.spanId}-00-later`, undefined)?.traceFlags, 0);
    for (const bad of [
      undefined,
      "",
      `00-${REMOTE.traceId}-${REMOTE.spanId}-01-extra`, // version 00 has four fields
      `ff-${REMOTE.traceId}-${REMOTE.spanId}-01`, // version ff is invalid
      `00-${REMOTE.traceId.toUpperCase()}-${REMOTE.spanId}-01`,
      `00-${"0".repeat(32)}-${REMOTE.spanId}-01`, // all-zero ids are invalid
      `00-${REMOTE.traceId}-${"0".repeat(16)}-01`,
      `00-${REMOTE.traceId}-${REMOTE.spanId}`,
    ]) {
      assert.equal(parseTraceparent(bad, undefined), undefined, String(bad));
    }
  });
});
